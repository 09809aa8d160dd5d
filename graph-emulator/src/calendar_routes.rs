//! Routing of the calendar requests (a child of the server module: it answers with its
//! [`Answer`] and paging helpers): calendars, events, instances and `calendarView/delta`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Answer, Shared, collection, filter_of, link, page_size, with_etag};
use crate::calendar::{self, EventShape};
use crate::error::GraphError;

/// The calendar a path names: `calendars/{id}` or `calendar` (the default), or `None` for the
/// mailbox's `events` (the default calendar too), and the rest of the path after it.
fn split_calendar<'a>(rest: &'a [&'a str]) -> Option<(Option<&'a str>, &'a [&'a str])> {
    match rest {
        ["calendars", c, tail @ ..] => Some((Some(*c), tail)),
        ["calendar", tail @ ..] => Some((Some("calendar"), tail)),
        ["events", ..] | ["calendarView", ..] => Some((None, rest)),
        _ => None,
    }
}

/// Answers a calendar request, or `None` when the path is not one.
pub(super) fn route(
    shared: &Shared,
    method: &str,
    path: &str,
    s: &[&str],
    q: &BTreeMap<String, String>,
    headers: &BTreeMap<String, String>,
    body: &Value,
) -> Option<Result<Answer, GraphError>> {
    let ["users", u, rest @ ..] = s else { return None };
    let if_match = headers.get("if-match").map(String::as_str);
    let size = page_size(q, headers, shared.config.page_size);
    let mut store = shared.store();
    let answer = match (method, rest) {
        ("GET", ["calendars"]) => filter_of(q)
            .and_then(|f| calendar::list_calendars(&mut store, u, f.as_ref()))
            .map(|items| collection(shared, path, q, items, size)),
        ("POST", ["calendars"]) => calendar::create_calendar(&mut store, u, body).map(|v| Answer::json(201, v)),
        ("GET", ["calendar"]) => calendar::get_calendar(&mut store, u, None).map(|v| Answer::json(200, v)),
        ("GET", ["calendars", c]) => calendar::get_calendar(&mut store, u, Some(c)).map(|v| Answer::json(200, v)),
        ("DELETE", ["calendars", c]) => calendar::delete_calendar(&mut store, u, c).map(|()| Answer::empty(204)),
        _ => {
            let (cal, tail) = split_calendar(rest)?;
            let shape = match EventShape::from_request(q, headers) {
                Ok(s) => s,
                Err(e) => return Some(Err(e)),
            };
            match (method, tail) {
                ("GET", ["events"]) => filter_of(q)
                    .and_then(|f| calendar::list_events(&mut store, u, cal, f.as_ref(), &shape))
                    .map(|items| collection(shared, path, q, items, size)),
                ("POST", ["events"]) => calendar::create_event(&mut store, u, cal, body).map(|v| with_etag(201, v)),
                ("GET", ["events", id]) => {
                    calendar::get_event(&mut store, u, cal, id, &shape).map(|v| with_etag(200, v))
                }
                ("PATCH", ["events", id]) => {
                    calendar::update_event(&mut store, u, cal, id, if_match, body).map(|v| with_etag(200, v))
                }
                ("DELETE", ["events", id]) => {
                    calendar::delete_event(&mut store, u, cal, id, if_match).map(|()| Answer::empty(204))
                }
                ("GET", ["events", id, "instances"]) => calendar::instances(&mut store, u, cal, id, q, &shape)
                    .map(|items| collection(shared, path, q, items, size)),
                ("GET", ["calendarView", "delta"]) if cal.is_none() || cal == Some("calendar") => {
                    let size = page_size(&BTreeMap::new(), headers, shared.config.page_size);
                    calendar::calendar_view_delta(&mut store, u, q, size, &shape).map(|page| {
                        let mut body = json!({
                            "@odata.context": format!("{}/v1.0/$metadata#Collection(event)", shared.base),
                            "value": page.value,
                        });
                        if let Some(t) = page.skip_token {
                            body["@odata.nextLink"] = json!(link(shared, path, q, ("$skiptoken", t), &["$deltatoken"]));
                        }
                        if let Some(t) = page.delta_token {
                            body["@odata.deltaLink"] =
                                json!(link(shared, path, q, ("$deltatoken", t), &["$skiptoken"]));
                        }
                        Answer::json(200, body)
                    })
                }
                _ => return None,
            }
        }
    };
    Some(answer)
}
