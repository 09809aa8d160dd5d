//! The quickstart's story on Exchange Online through Microsoft Graph, on the embedded Graph
//! emulator: one sync group whose hub is the folder `Company Contacts` of the shared mailbox
//! `contacts@contoso.test`, with two editors (two-way) and two readers (one-way). Each step runs
//! one sync pass, as the service's delta poll would, and prints what happened with timings:
//!
//! 1. the initial fan-out of the hub's contacts to the four members;
//! 2. an edit on the hub reaches all four members;
//! 3. an editor's edit (as made from a phone) reaches the hub and the others;
//! 4. a reader's edit is reverted;
//! 5. a contact deleted on the hub disappears everywhere.
//!
//! The group runs on the core engine directly, with every step's pass visible (the service runs
//! Graph groups too, through `exchange_sync::GraphFolders`; see `docs/graph.md`). Run it with
//! `cargo run --example quickstart_graph`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use exchange_sync_core::engine::GroupSync;
use exchange_sync_core::state::memory::MemoryStore;
use exchange_sync_core::{Connector, Direction, Member, MemberId, StateStore, SyncGroup};
use exchange_sync_graph::{ClientCredentials, GraphClient, GraphContactsConnector, Secret};
use graph_emulator::{GraphEmulator, GraphEmulatorConfig, RunningGraphEmulator};
use serde_json::{Value, json};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const FOLDER: &str = "Company Contacts";
const EDITORS: [&str; 2] = ["alice", "bob"];
const READERS: [&str; 2] = ["carol", "dave"];

struct Story {
    emu: RunningGraphEmulator,
    engine: GroupSync,
    /// Mailbox address and folder id of the hub and of each member.
    folders: BTreeMap<String, (String, String)>,
}

impl Story {
    async fn pass(&self, what: &str) -> Result<(), BoxError> {
        let started = Instant::now();
        let report = self.engine.run().await?;
        println!("  {what}: {} writes in {:.0?}", report.written(), started.elapsed());
        if !report.is_clean() {
            return Err(format!("the pass was not clean: {report:?}").into());
        }
        Ok(())
    }

    /// A property of the contact with this surname in a folder (`None`: no such contact).
    fn property(&self, who: &str, surname: &str, property: &str) -> Option<Value> {
        let (mailbox, folder) = &self.folders[who];
        let contacts = self.emu.store().folder_contacts(mailbox, folder);
        contacts
            .into_iter()
            .find(|c| c.properties.get("surname") == Some(&json!(surname)))
            .map(|c| c.properties.get(property).cloned().unwrap_or(Value::Null))
    }

    fn edit(&self, who: &str, surname: &str, property: &str, value: Value) -> Result<(), BoxError> {
        let (mailbox, folder) = &self.folders[who];
        let id = self
            .emu
            .store()
            .folder_contacts(mailbox, folder)
            .into_iter()
            .find(|c| c.properties.get("surname") == Some(&json!(surname)))
            .map(|c| c.id)
            .ok_or("no such contact")?;
        self.emu.store().edit_contact(mailbox, &id, property, value)?;
        Ok(())
    }

    fn everyone(&self) -> impl Iterator<Item = &String> {
        self.folders.keys()
    }

    fn expect(&self, surname: &str, property: &str, value: &Value) -> Result<(), BoxError> {
        for who in self.everyone() {
            let got = self.property(who, surname, property);
            if got.as_ref() != Some(value) {
                return Err(format!("{who}: {surname}'s {property} is {got:?}, expected {value}").into());
            }
        }
        println!("    every folder holds {surname}'s {property} = {value}");
        Ok(())
    }
}

async fn setup() -> Result<Story, BoxError> {
    let emu = GraphEmulator::start(GraphEmulatorConfig { seed_contacts: 25, ..Default::default() }).await?;
    let credentials = ClientCredentials {
        authority: emu.authority(),
        client_id: emu.config().client_id.clone(),
        secret: Secret::new(emu.config().client_secret.clone()),
    };
    let client = GraphClient::builder(credentials).graph_url(emu.url()).build()?;
    let mut connectors: BTreeMap<MemberId, Arc<dyn Connector>> = BTreeMap::new();
    let mut folders = BTreeMap::new();
    let hub_box = emu.config().address("contacts");
    let hub = GraphContactsConnector::open(client.clone(), &hub_box, FOLDER, false).await?;
    folders.insert("hub".to_owned(), (hub_box, hub.folder_id().unwrap_or_default()));
    connectors.insert(MemberId::new("hub"), Arc::new(hub));
    let mut group = SyncGroup::new("company-contacts", "hub");
    for (who, direction) in
        EDITORS.iter().map(|w| (w, Direction::two_way())).chain(READERS.iter().map(|w| (w, Direction::one_way())))
    {
        let mailbox = emu.config().address(who);
        let c = GraphContactsConnector::open(client.clone(), &mailbox, FOLDER, true).await?;
        folders.insert((*who).to_owned(), (mailbox, c.folder_id().unwrap_or_default()));
        connectors.insert(MemberId::new(*who), Arc::new(c));
        group = group.with_member(Member::new(*who, direction));
    }
    let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let engine = GroupSync::new(group, store, connectors)?;
    Ok(Story { emu, engine, folders })
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let story = setup().await?;
    println!("Graph emulator at {} (tenant contoso.test)", story.emu.url());
    println!("hub: contacts@contoso.test/{FOLDER}; editors {EDITORS:?}; readers {READERS:?}");

    println!("1. initial fan-out");
    story.pass("first pass").await?;
    story.expect("Person0", "companyName", &json!("Contoso"))?;

    println!("2. an edit on the hub reaches every member");
    story.edit("hub", "Person1", "jobTitle", json!("Head of Sales"))?;
    story.pass("pass").await?;
    story.expect("Person1", "jobTitle", &json!("Head of Sales"))?;

    println!("3. an editor's phone edit reaches the hub and the others");
    story.edit("alice", "Person2", "mobilePhone", json!("+1 555 0142"))?;
    story.pass("pass").await?;
    story.expect("Person2", "mobilePhone", &json!("+1 555 0142"))?;

    println!("4. a reader's edit is reverted");
    story.edit("carol", "Person3", "jobTitle", json!("Self-appointed CEO"))?;
    story.pass("pass").await?;
    story.expect("Person3", "jobTitle", &json!("Staff"))?;

    println!("5. a contact deleted on the hub disappears everywhere");
    let (hub_box, hub_folder) = story.folders["hub"].clone();
    let id = story
        .emu
        .store()
        .folder_contacts(&hub_box, &hub_folder)
        .into_iter()
        .find(|c| c.properties.get("surname") == Some(&json!("Person4")))
        .map(|c| c.id)
        .ok_or("no Person4 on the hub")?;
    story.emu.store().delete_contact(&hub_box, None, &id, None)?;
    story.pass("pass").await?;
    for who in story.everyone() {
        if story.property(who, "Person4", "id").is_some() {
            return Err(format!("{who} still holds Person4").into());
        }
    }
    println!("    no folder holds Person4");
    println!("done: {} Graph requests, {} throttled", story.emu.requests(), story.emu.throttled());
    Ok(())
}
