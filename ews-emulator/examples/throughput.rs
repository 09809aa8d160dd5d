//! Throughput of the emulator for CreateItem and GetItem batches of 100 contacts over loopback.
//!
//! ```text
//! cargo run --release -p ews-emulator --example throughput -- [BATCHES] [CLIENTS]
//! ```
//!
//! Each client is its own account (alice, bob, ...), so the per-account concurrency limit
//! does not interfere; every client sends BATCHES CreateItem batches, then BATCHES GetItem
//! (AllProperties) batches for the items it created.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use ews_emulator::xml::parse;
use ews_emulator::{Emulator, EmulatorConfig};

const BATCH: usize = 100;

fn envelope(body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"><soap:Header><t:RequestServerVersion Version="Exchange2016"/></soap:Header><soap:Body>{body}</soap:Body></soap:Envelope>"#
    )
}

fn contact(i: usize) -> String {
    format!(
        r#"<t:Contact><t:Body BodyType="Text">Benchmark contact {i}</t:Body><t:ExtendedProperty><t:ExtendedFieldURI PropertySetId="c11ff724-aa03-4555-9952-8fa248a11c3e" PropertyName="OriginStamp" PropertyType="String"/><t:Value>bench:{i}</t:Value></t:ExtendedProperty><t:FileAs>Müller, Zoë {i}</t:FileAs><t:DisplayName>Zoë Müller {i}</t:DisplayName><t:GivenName>Zoë</t:GivenName><t:CompanyName>Fabrikam</t:CompanyName><t:EmailAddresses><t:Entry Key="EmailAddress1">zoe{i}@fabrikam.example</t:Entry><t:Entry Key="EmailAddress2">zoe{i}@home.example</t:Entry></t:EmailAddresses><t:PhysicalAddresses><t:Entry Key="Business"><t:Street>Bahnhofstraße {i}</t:Street><t:City>Zürich</t:City><t:PostalCode>8001</t:PostalCode></t:Entry></t:PhysicalAddresses><t:PhoneNumbers><t:Entry Key="BusinessPhone">+41 44 000 {i}</t:Entry><t:Entry Key="MobilePhone">+41 79 000 {i}</t:Entry></t:PhoneNumbers><t:JobTitle>Buyer</t:JobTitle><t:Surname>Müller {i}</t:Surname></t:Contact>"#
    )
}

struct Stats {
    items: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Stats {
    fn print(&mut self, name: &str) {
        self.latencies.sort();
        let p = |q: f64| self.latencies[((self.latencies.len() as f64 - 1.0) * q) as usize];
        println!(
            "{name:<10} {:>8} items in {:>6.2} s = {:>8.0} items/s   batch latency p50 {:>6.1} ms, p95 {:>6.1} ms",
            self.items,
            self.elapsed.as_secs_f64(),
            self.items as f64 / self.elapsed.as_secs_f64(),
            p(0.5).as_secs_f64() * 1000.0,
            p(0.95).as_secs_f64() * 1000.0
        );
    }
}

async fn post(http: &reqwest::Client, url: &str, user: &str, body: String) -> String {
    let r = http
        .post(url)
        .basic_auth(user, Some("exchange-sync"))
        .header("Content-Type", "text/xml; charset=utf-8")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let batches: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(50);
    let clients: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(4);
    let users: Vec<String> = (0..clients).map(|i| format!("bench{i}")).collect();
    let emu =
        Emulator::start(EmulatorConfig { users: users.clone(), contacts: 0, ..Default::default() }).await.unwrap();
    let url = emu.url().to_string();
    let create_body = envelope(&format!(
        r#"<m:CreateItem><m:SavedItemFolderId><t:DistinguishedFolderId Id="contacts"/></m:SavedItemFolderId><m:Items>{}</m:Items></m:CreateItem>"#,
        (0..BATCH).map(contact).collect::<String>()
    ));

    let start = Instant::now();
    let tasks: Vec<_> = users
        .iter()
        .map(|user| {
            let (http, url, user, body) = (reqwest::Client::new(), url.clone(), user.clone(), create_body.clone());
            tokio::spawn(async move {
                let mut ids = Vec::new();
                let mut lat = Vec::new();
                for _ in 0..batches {
                    let t = Instant::now();
                    let text = post(&http, &url, &user, body.clone()).await;
                    lat.push(t.elapsed());
                    let doc = parse(text.as_bytes()).unwrap();
                    collect_ids(&doc, &mut ids);
                }
                (ids, lat)
            })
        })
        .collect();
    let mut created = Vec::new();
    let mut create = Stats { items: 0, elapsed: Duration::ZERO, latencies: Vec::new() };
    for t in tasks {
        let (ids, lat) = t.await.unwrap();
        create.items += ids.len();
        create.latencies.extend(lat);
        created.push(ids);
    }
    create.elapsed = start.elapsed();
    assert_eq!(create.items, batches * BATCH * clients);

    let start = Instant::now();
    let tasks: Vec<_> = users
        .iter()
        .zip(created)
        .map(|(user, ids)| {
            let (http, url, user) = (reqwest::Client::new(), url.clone(), user.clone());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut n = 0;
                for chunk in ids.chunks(BATCH) {
                    let ids: String = chunk.iter().map(|i| format!(r#"<t:ItemId Id="{i}"/>"#)).collect();
                    let body = envelope(&format!(r#"<m:GetItem><m:ItemShape><t:BaseShape>AllProperties</t:BaseShape></m:ItemShape><m:ItemIds>{ids}</m:ItemIds></m:GetItem>"#));
                    let t = Instant::now();
                    let text = post(&http, &url, &user, body).await;
                    lat.push(t.elapsed());
                    n += text.matches("<t:Contact>").count();
                }
                (n, lat)
            })
        })
        .collect();
    let mut get = Stats { items: 0, elapsed: Duration::ZERO, latencies: Vec::new() };
    for t in tasks {
        let (n, lat) = t.await.unwrap();
        get.items += n;
        get.latencies.extend(lat);
    }
    get.elapsed = start.elapsed();
    println!("{clients} clients x {batches} batches of {BATCH} contacts, loopback, one emulator process");
    create.print("CreateItem");
    get.print("GetItem");
    emu.shutdown().await;
}

fn collect_ids(e: &ews_emulator::xml::Element, out: &mut Vec<String>) {
    if e.name == "ItemId"
        && let Some(id) = e.attr("Id")
    {
        out.push(id.to_string());
    }
    for c in &e.children {
        collect_ids(c, out);
    }
}
