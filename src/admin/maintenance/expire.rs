//! Expiration, the orphan list and the import as tasks of the report page:
//! `doExpire` (the run, [`crate::maint::expire`]), `justShow` (the list,
//! with a link that removes what it shows), `justRemove` (removes it) and
//! `doImport` ([`crate::maint::import`]).

use std::time::SystemTime;

use super::output::{utc_minute, Kind};
use super::task::Ctx;
use crate::admin::health::human_bytes;
use crate::admin::help::escape;
use crate::maint::expire::{self, Options};
use crate::maint::Context;
use crate::maint::{Level, Report};

/// The queries of the tasks, and of their Cancel links.
pub const EXPIRE: &str = "doExpire=Start+Expiration";
pub const SHOW: &str = "justShow=Show+unreferenced";
pub const REMOVE: &str = "justRemove=Delete+unreferenced";
pub const IMPORT: &str = "doImport=Start+Import";
pub const MIRROR: &str = "doMirror=Start+Mirroring";
pub const SHOW_DAMAGED: &str = "justShowDamaged=Show+damaged";
pub const REMOVE_DAMAGED: &str = "justRemoveDamaged=Delete+damaged";
pub const TRUNCATE_DAMAGED: &str = "justTruncDamaged=Truncate+damaged";

impl Report for Ctx {
    fn say(&mut self, level: Level, text: &str) {
        let kind = match level {
            Level::Info => Kind::Plain,
            Level::Good => Kind::Good,
            Level::Warning => Kind::Warning,
            Level::Problem => Kind::Problem,
            Level::Error => Kind::Error,
        };
        Ctx::say(self, kind, text);
    }

    fn should_stop(&self) -> bool {
        Ctx::should_stop(self)
    }
}

/// `doExpire`: runs on a blocking thread.
pub fn run(context: Context, options: Options) -> impl FnOnce(&mut Ctx) + Send {
    move |ctx| {
        let context = Context {
            now: SystemTime::now(),
            ..context
        };
        expire::run(&context, options, ctx);
    }
}

/// `justShow`: the orphan list's files, their sizes, and a link removing
/// them.
pub fn show(context: Context, report: String) -> impl FnOnce(&mut Ctx) + Send {
    move |ctx| {
        let listed = match expire::orphans(&context.cache) {
            Ok(listed) => listed,
            Err(e) => {
                ctx.say(Kind::Error, &format!("Cannot read the orphan list: {e}"));
                return;
            }
        };
        if listed.is_empty() {
            ctx.say(
                Kind::Plain,
                "No unreferenced files are listed (an expiration lists them).",
            );
            return;
        }
        let mut html = String::from(
            "<table class=\"count\">\n<thead><tr><th>File</th><th>Size</th><th>Unreferenced since</th></tr></thead>\n<tbody>\n",
        );
        let mut total = 0;
        for file in &listed {
            let since = file
                .since
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let size = file.len.map_or_else(|| "(.head only)".to_string(), human_bytes);
            total += file.len.unwrap_or(0);
            html.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{} UTC</td></tr>\n",
                escape(&file.path),
                escape(&size),
                utc_minute(since)
            ));
        }
        html.push_str("</tbody>\n</table>\n");
        ctx.html(html);
        ctx.say(
            Kind::Plain,
            &format!("{} files, {}.", listed.len(), human_bytes(total)),
        );
        ctx.html(format!(
            "<p><a href=\"{}?{REMOVE}\">Delete all listed files</a></p>\n",
            escape(&report)
        ));
    }
}

/// `justRemove`: removes every listed orphan now.
pub fn remove(context: Context) -> impl FnOnce(&mut Ctx) + Send {
    move |ctx| match expire::remove_orphans(&context.cache, ctx) {
        Ok(removed) => {
            let text = format!(
                "Done: {} files ({}) removed.",
                removed.count,
                human_bytes(removed.bytes)
            );
            tracing::info!("orphans removed: {text}");
            ctx.say(Kind::Good, &text);
        }
        Err(e) => ctx.say(Kind::Error, &format!("Cannot update the orphan list: {e}")),
    }
}

/// `justShowDamaged`: the list, with a check box per file and the
/// buttons that ask to delete or truncate the ones ticked.
pub fn show_damaged(context: Context, report: String) -> impl FnOnce(&mut Ctx) + Send {
    move |ctx| {
        let Some(listed) = damaged_list(&context, ctx) else {
            return;
        };
        if listed.is_empty() {
            ctx.say(Kind::Plain, expire::NO_DAMAGED);
            return;
        }
        let mut html = format!("<form method=\"get\" action=\"{}\">\n", escape(&report));
        for (i, path) in listed.iter().enumerate() {
            html.push_str(&format!(
                "<label><input type=\"checkbox\" name=\"kf\" value=\"{i}\"> {}</label><br>\n",
                escape(path)
            ));
        }
        html.push_str(
            "<button type=\"submit\" name=\"doDelete\" value=\"Delete selected\">Delete selected</button> \
             <button type=\"submit\" name=\"doTruncate\" value=\"Truncate selected\">Truncate selected</button>\n</form>\n",
        );
        ctx.html(html);
        ctx.say(
            Kind::Plain,
            &format!("{} damaged files are listed.", listed.len()),
        );
    }
}

/// The damaged-file list, or `None` when it could not be read (said).
fn damaged_list(context: &Context, ctx: &mut Ctx) -> Option<Vec<String>> {
    expire::damaged_list(&context.cache)
        .map_err(|e| ctx.say(Kind::Error, &format!("Cannot read the damaged-file list: {e}")))
        .ok()
}

/// `doDelete`, `doTruncate`: the files ticked, and a button that does it
/// (acng's delconfirm). Changes nothing.
pub fn confirm(
    context: Context,
    action: expire::OnDamaged,
    ids: Vec<usize>,
    report: String,
) -> impl FnOnce(&mut Ctx) + Send {
    move |ctx| {
        let Some(listed) = damaged_list(&context, ctx) else {
            return;
        };
        let chosen: Vec<(usize, &String)> = listed
            .iter()
            .enumerate()
            .filter(|(i, _)| ids.contains(i))
            .collect();
        if chosen.is_empty() {
            ctx.say(Kind::Warning, "No listed file was selected: nothing to do.");
            return;
        }
        let (verb, name, value) = match action {
            expire::OnDamaged::Truncate => (
                "truncated to zero bytes (their .head kept)",
                "doTruncateYes",
                "Truncate",
            ),
            _ => ("deleted with their .head", "doDeleteYes", "Delete"),
        };
        let mut html = format!(
            "<p>These {} files will be {verb}:</p>\n<form method=\"get\" action=\"{}\">\n",
            chosen.len(),
            escape(&report)
        );
        for (i, path) in &chosen {
            html.push_str(&format!(
                "<input type=\"hidden\" name=\"kf\" value=\"{i}\">{}<br>\n",
                escape(path)
            ));
        }
        html.push_str(&format!(
            "<button type=\"submit\" name=\"{name}\" value=\"{value}\">Yes, {}</button>\n</form>\n",
            value.to_lowercase()
        ));
        ctx.html(html);
    }
}

/// The numbers of the `kf` check boxes in a query.
pub fn selected(query: &str) -> Vec<usize> {
    query
        .split('&')
        .filter_map(|p| p.strip_prefix("kf="))
        .filter_map(|v| v.parse().ok())
        .collect()
}

/// `justRemoveDamaged`, `justTruncDamaged` (every listed file), and the
/// confirmed `doDeleteYes`, `doTruncateYes` (the ticked ones).
pub fn damaged(
    context: Context,
    action: expire::OnDamaged,
    only: Option<Vec<usize>>,
) -> impl FnOnce(&mut Ctx) + Send {
    move |ctx| match expire::damaged(&context.cache, action, only.as_deref(), ctx) {
        Ok(done) if action != expire::OnDamaged::Show => {
            let text = format!(
                "Done: {} files ({}) changed.",
                done.count,
                human_bytes(done.bytes)
            );
            tracing::info!("damaged files: {text}");
            ctx.say(Kind::Good, &text);
        }
        Ok(_) => {}
        Err(e) => ctx.say(Kind::Error, &format!("Cannot update the damaged-file list: {e}")),
    }
}

/// `doMirror`: precaching per `PrecacheFor`.
pub fn mirror(context: Context, options: crate::maint::precache::Options) -> impl FnOnce(&mut Ctx) + Send {
    move |ctx| {
        crate::maint::precache::run(&context, options, ctx);
    }
}

/// `doImport`: the files of `_import` matched against the indexes.
pub fn import(context: Context) -> impl FnOnce(&mut Ctx) + Send {
    move |ctx| {
        crate::maint::import::run(&context.cache, ctx);
    }
}
