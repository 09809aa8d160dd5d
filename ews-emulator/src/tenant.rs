//! The demo tenant: accounts, rights, the distribution group and the generated public folders.
//!
//! This is a stable contract that tests and documentation rely on: domain `contoso.test`,
//! users alice, bob, carol, dave (configurable), `sync-admin` with ApplicationImpersonation
//! over every mailbox and owner rights on the public folders, one password for all, public
//! folders `Company Contacts` (N generated contacts) and `Company Calendar` (a few events, one
//! recurring), and the distribution group `sales@contoso.test` = alice + bob.

use std::collections::HashMap;
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::config::EmulatorConfig;
use crate::notifications::NotificationHub;
use crate::store::{Permission, Store};
use crate::xml::Element;

/// Local part of the administrative account.
pub const ADMIN: &str = "sync-admin";
/// Display name of the public contacts folder.
pub const COMPANY_CONTACTS: &str = "Company Contacts";
/// Display name of the public calendar folder.
pub const COMPANY_CALENDAR: &str = "Company Calendar";

/// An account that can log in.
#[derive(Debug, Clone)]
pub struct Account {
    /// Primary SMTP address (lowercase).
    pub address: String,
    /// Display name.
    pub display_name: String,
    /// Holds the ApplicationImpersonation role over every mailbox.
    pub impersonation: bool,
}

/// Accounts, passwords and distribution groups.
#[derive(Debug, Clone)]
pub struct Directory {
    /// Mail domain.
    pub domain: String,
    password: String,
    accounts: HashMap<String, Account>,
    groups: HashMap<String, (String, Vec<String>)>,
}

impl Directory {
    /// Resolves a login name (`alice`, `alice@contoso.test`, `CONTOSO\alice`) to an account.
    pub fn account_for_login(&self, login: &str) -> Option<&Account> {
        let login = login.trim().to_ascii_lowercase();
        let local = login.rsplit('\\').next().unwrap_or(&login);
        let address = if local.contains('@') { local.to_string() } else { format!("{local}@{}", self.domain) };
        self.accounts.get(&address)
    }

    /// Checks a login and password; the account on success.
    pub fn authenticate(&self, login: &str, password: &str) -> Option<&Account> {
        let account = self.account_for_login(login)?;
        (password == self.password).then_some(account)
    }

    /// The password every account shares (NTLM verification computes with it).
    pub(crate) fn password(&self) -> &str {
        &self.password
    }

    /// The account with this SMTP address.
    pub fn account(&self, address: &str) -> Option<&Account> {
        self.accounts.get(&address.trim().to_ascii_lowercase())
    }

    /// Members (addresses, display names) of a distribution group.
    pub fn group(&self, address: &str) -> Option<(&str, Vec<&Account>)> {
        let (name, members) = self.groups.get(&address.trim().to_ascii_lowercase())?;
        Some((name.as_str(), members.iter().filter_map(|m| self.accounts.get(m)).collect()))
    }
}

fn display_name(local: &str) -> String {
    local
        .split(['-', '.', '_'])
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Builds the directory and a store filled with the demo data.
pub fn build(config: &EmulatorConfig, hub: Arc<NotificationHub>) -> (Directory, Store) {
    let domain = config.domain.to_ascii_lowercase();
    let mut locals: Vec<String> =
        config.users.iter().map(|u| u.trim().to_ascii_lowercase()).filter(|u| !u.is_empty()).collect();
    if !locals.iter().any(|u| u == ADMIN) {
        locals.push(ADMIN.to_string());
    }
    let mut accounts = HashMap::new();
    let mut mailboxes = Vec::new();
    for local in &locals {
        let address = format!("{local}@{domain}");
        let name = display_name(local);
        accounts.insert(
            address.clone(),
            Account { address: address.clone(), display_name: name.clone(), impersonation: local == ADMIN },
        );
        mailboxes.push((address, name));
    }
    let mut groups = HashMap::new();
    let sales: Vec<String> =
        ["alice", "bob"].iter().map(|l| format!("{l}@{domain}")).filter(|a| accounts.contains_key(a)).collect();
    groups.insert(format!("sales@{domain}"), ("Sales".to_string(), sales));
    let directory = Directory { domain: domain.clone(), password: config.password.clone(), accounts, groups };
    let store = Store::new(&domain, &mailboxes, hub);
    let admin = format!("{ADMIN}@{domain}");
    let pf = store.public_index();
    store.write(pf, |mb| {
        let Some(root) = mb.distinguished.get("publicfoldersroot").copied() else {
            return;
        };
        mb.grant(root, &admin, Permission::Owner);
        let contacts = mb.create_folder(root, COMPANY_CONTACTS, "IPF.Contact");
        let calendar = mb.create_folder(root, COMPANY_CALENDAR, "IPF.Appointment");
        if let Ok(folder) = contacts {
            let mut rng = StdRng::seed_from_u64(config.seed ^ 0x00c0_ffee);
            for i in 0..config.contacts {
                let fields = generated_contact(&mut rng, i, &domain);
                let _ = mb.create_item(folder, "Contact", "IPM.Contact", fields, Vec::new());
            }
        }
        if let Ok(folder) = calendar {
            for (fields, _) in company_events() {
                let _ = mb.create_item(folder, "CalendarItem", "IPM.Appointment", fields, Vec::new());
            }
        }
    });
    (directory, store)
}

const GIVEN: &[&str] = &[
    "Zoë",
    "José",
    "François",
    "Åsa",
    "Björn",
    "Chloé",
    "Renée",
    "Jürgen",
    "Łukasz",
    "Núria",
    "Søren",
    "Inès",
    "Mónica",
    "Ahmet",
    "Siobhán",
    "Oğuz",
    "Ines",
    "Thomas",
    "Maria",
    "Yuki",
    "Priya",
    "Kwame",
    "Ana",
    "Henrik",
    "Émile",
    "Nguyễn",
];
const SURNAMES: &[&str] = &[
    "Müller",
    "García",
    "Østergaard",
    "Nováková",
    "Łęcki",
    "O'Brien",
    "Smith",
    "Kowalski",
    "Dubois",
    "Rossi",
    "Yılmaz",
    "Andersson",
    "Ferreira",
    "Schäfer",
    "Tanaka",
    "Mensah",
    "Patel",
    "Ó Súilleabháin",
    "Van der Berg",
    "Zhang",
];
const COMPANIES: &[&str] = &[
    "Fabrikam, Inc.",
    "Northwind Traders",
    "Tailspin Toys",
    "Wide World Importers",
    "Adventure Works",
    "Contoso & Söhne",
];
const CITIES: &[(&str, &str, &str, &str)] = &[
    ("Zürich", "ZH", "Switzerland", "8001"),
    ("München", "BY", "Germany", "80331"),
    ("São Paulo", "SP", "Brazil", "01310-100"),
    ("Kraków", "MA", "Poland", "30-001"),
    ("Seattle", "WA", "United States", "98101"),
    ("Montréal", "QC", "Canada", "H2Y 1C6"),
    ("København", "84", "Denmark", "1050"),
];
const TITLES: &[&str] =
    &["Account Manager", "Chief Technology Officer", "Buyer", "Field Engineer", "Head of Sales", "Consultant"];
const STREETS: &[&str] =
    &["Bahnhofstraße", "Rua Augusta", "Main Street", "Rue Sainte-Catherine", "Ulica Floriańska", "Strøget"];

fn ascii(s: &str) -> String {
    s.chars()
        .filter_map(|c| match c {
            'a'..='z' | '0'..='9' => Some(c),
            'A'..='Z' => Some(c.to_ascii_lowercase()),
            'ä' | 'å' | 'á' | 'à' | 'ã' => Some('a'),
            'ö' | 'ø' | 'ó' | 'ô' => Some('o'),
            'ü' | 'ú' => Some('u'),
            'é' | 'è' | 'ë' | 'ễ' | 'É' => Some('e'),
            'ç' => Some('c'),
            'ł' | 'Ł' => Some('l'),
            'ı' | 'í' => Some('i'),
            'ñ' => Some('n'),
            'ğ' => Some('g'),
            'ę' => Some('e'),
            'Å' | 'Á' => Some('a'),
            'Ó' | 'Ø' => Some('o'),
            _ => None,
        })
        .collect()
}

/// One deterministic, varied contact (fields as `t:` elements, in any order).
pub fn generated_contact(rng: &mut StdRng, i: usize, domain: &str) -> Vec<Element> {
    let given = GIVEN[rng.gen_range(0..GIVEN.len())];
    let surname = SURNAMES[rng.gen_range(0..SURNAMES.len())];
    let company = COMPANIES[rng.gen_range(0..COMPANIES.len())];
    let (city, state, country, zip) = CITIES[rng.gen_range(0..CITIES.len())];
    let display = format!("{given} {surname}");
    let company_domain = format!("{}.example", ascii(company.split([',', ' ']).next().unwrap_or("company")));
    let user = format!("{}.{}{}", ascii(given), ascii(surname), i);
    let mut fields = vec![
        // As Outlook files a contact by default: "Surname, Given", kept up to date by the store.
        Element::t_text("FileAs", format!("{surname}, {given}")),
        Element::t_text("FileAsMapping", "LastCommaFirst"),
        Element::t_text("DisplayName", display),
        Element::t_text("GivenName", given),
        Element::t_text("CompanyName", company),
        Element::t_text("JobTitle", TITLES[rng.gen_range(0..TITLES.len())]),
        Element::t_text("Surname", surname),
    ];
    let mut emails = Element::t("EmailAddresses")
        .with_child(Element::t_text("Entry", format!("{user}@{company_domain}")).with_attr("Key", "EmailAddress1"));
    let n_mail = rng.gen_range(1..=3);
    if n_mail >= 2 {
        emails
            .children
            .push(Element::t_text("Entry", format!("{user}@home.example")).with_attr("Key", "EmailAddress2"));
    }
    if n_mail >= 3 {
        emails
            .children
            .push(Element::t_text("Entry", format!("{}@{domain}", ascii(given))).with_attr("Key", "EmailAddress3"));
    }
    fields.push(emails);
    let mut address = Element::t("Entry").with_attr("Key", "Business");
    address.children.push(Element::t_text(
        "Street",
        format!("{} {}", STREETS[rng.gen_range(0..STREETS.len())], rng.gen_range(1..200)),
    ));
    address.children.push(Element::t_text("City", city));
    address.children.push(Element::t_text("State", state));
    address.children.push(Element::t_text("CountryOrRegion", country));
    address.children.push(Element::t_text("PostalCode", zip));
    let mut addresses = Element::t("PhysicalAddresses").with_child(address);
    if rng.gen_bool(0.3) {
        let mut home = Element::t("Entry").with_attr("Key", "Home");
        home.children.push(Element::t_text(
            "Street",
            format!("{} {}", STREETS[rng.gen_range(0..STREETS.len())], rng.gen_range(1..99)),
        ));
        home.children.push(Element::t_text("City", city));
        home.children.push(Element::t_text("CountryOrRegion", country));
        addresses.children.push(home);
    }
    fields.push(addresses);
    let mut phones = Element::t("PhoneNumbers").with_child(
        Element::t_text(
            "Entry",
            format!("+41 44 {:03} {:02} {:02}", rng.gen_range(100..999), rng.gen_range(10..99), rng.gen_range(10..99)),
        )
        .with_attr("Key", "BusinessPhone"),
    );
    if rng.gen_bool(0.7) {
        phones.children.push(
            Element::t_text("Entry", format!("+49 151 {:08}", rng.gen_range(10_000_000..99_999_999)))
                .with_attr("Key", "MobilePhone"),
        );
    }
    if rng.gen_bool(0.2) {
        phones.children.push(
            Element::t_text("Entry", format!("+1 206 555 {:04}", rng.gen_range(0..9999))).with_attr("Key", "HomePhone"),
        );
    }
    fields.push(phones);
    if rng.gen_bool(0.4) {
        fields.push(
            Element::t_text(
                "Body",
                format!(
                    "Met at the {} trade fair.\nPrefers e-mail; speaks {}.",
                    city,
                    if rng.gen_bool(0.5) { "français & English" } else { "Deutsch" }
                ),
            )
            .with_attr("BodyType", "Text"),
        );
    }
    if rng.gen_bool(0.3) {
        fields.push(
            Element::t("Categories")
                .with_child(Element::t_text("String", if rng.gen_bool(0.5) { "Customer" } else { "Supplier" })),
        );
    }
    if rng.gen_bool(0.15) {
        fields.push(Element::t_text(
            "Birthday",
            format!("19{}-0{}-1{}T00:00:00Z", rng.gen_range(60..99), rng.gen_range(1..9), rng.gen_range(0..9)),
        ));
    }
    fields
}

/// The events of `Company Calendar`: (fields, recurring?).
pub fn company_events() -> Vec<(Vec<Element>, bool)> {
    let event = |subject: &str, start: &str, end: &str, location: &str| {
        vec![
            Element::t_text("Subject", subject),
            Element::t_text("Body", format!("{subject} — agenda to follow.")).with_attr("BodyType", "Text"),
            Element::t_text("Start", start),
            Element::t_text("End", end),
            Element::t_text("Location", location),
        ]
    };
    let mut weekly = event("Weekly all-hands", "2026-01-05T09:00:00Z", "2026-01-05T09:30:00Z", "Auditorium");
    weekly.push(
        Element::t("Recurrence")
            .with_child(
                Element::t("WeeklyRecurrence")
                    .with_child(Element::t_text("Interval", "1"))
                    .with_child(Element::t_text("DaysOfWeek", "Monday")),
            )
            .with_child(
                Element::t("NumberedRecurrence")
                    .with_child(Element::t_text("StartDate", "2026-01-05"))
                    .with_child(Element::t_text("NumberOfOccurrences", "52")),
            ),
    );
    // Easter Monday is off: one deleted occurrence, as Exchange reports it on the master.
    weekly.push(
        Element::t("DeletedOccurrences")
            .with_child(Element::t("DeletedOccurrence").with_child(Element::t_text("Start", "2026-04-06T09:00:00Z"))),
    );
    let mut offsite = event("Company offsite", "2026-06-15T00:00:00Z", "2026-06-17T00:00:00Z", "Lake Zürich");
    offsite.push(Element::t_text("IsAllDayEvent", "true"));
    vec![
        (event("Quarterly business review", "2026-03-31T13:00:00Z", "2026-03-31T15:00:00Z", "Room Genève"), false),
        (offsite, false),
        (weekly, true),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_tenant_matches_the_contract() {
        let config = EmulatorConfig { contacts: 7, ..Default::default() };
        let (dir, store) = build(&config, Arc::new(NotificationHub::default()));
        assert!(dir.authenticate("alice", "exchange-sync").is_some());
        assert!(dir.authenticate("CONTOSO\\Bob", "exchange-sync").is_some());
        assert!(dir.authenticate("carol@contoso.test", "wrong").is_none());
        assert!(dir.account("sync-admin@contoso.test").unwrap().impersonation);
        assert!(!dir.account("dave@contoso.test").unwrap().impersonation);
        let (_, members) = dir.group("sales@contoso.test").unwrap();
        assert_eq!(members.len(), 2);
        let pf = store.items_in("publicfolders@contoso.test", COMPANY_CONTACTS).unwrap();
        assert_eq!(pf.len(), 7);
        let cal = store.items_in("publicfolders@contoso.test", COMPANY_CALENDAR).unwrap();
        assert_eq!(cal.iter().filter(|i| i.item.field("Recurrence").is_some()).count(), 1);
    }

    #[test]
    fn contacts_are_deterministic_and_varied() {
        let a: Vec<_> =
            (0..20).map(|i| generated_contact(&mut StdRng::seed_from_u64(i), i as usize, "contoso.test")).collect();
        let b: Vec<_> =
            (0..20).map(|i| generated_contact(&mut StdRng::seed_from_u64(i), i as usize, "contoso.test")).collect();
        assert_eq!(a, b);
        assert!(a.iter().any(|c| c.iter().any(|f| !f.text.is_ascii())));
        assert!(a.iter().any(|c| { c.iter().any(|f| f.name == "EmailAddresses" && f.children.len() > 1) }));
    }
}
