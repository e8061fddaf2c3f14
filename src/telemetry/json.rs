//! JSON log lines written straight into the line buffer: the timestamp, level, the event's fields
//! at the top level, its target, and the list of spans it happened in (root first), each with its
//! fields and name — the layout of `tracing-subscriber`'s JSON format with the event flattened
//! and the span list on, without parsing a span's fields back into a map for every line, nor
//! re-parsing them when a field is recorded on an open span.

use std::fmt::{self, Write as _};

use tracing::{
    field::{Field, Visit},
    Event, Subscriber,
};
use tracing_log::NormalizeEvent as _;
use tracing_subscriber::{
    field::RecordFields,
    fmt::{
        format::Writer,
        time::{FormatTime, SystemTime},
        FmtContext, FormatEvent, FormatFields, FormattedFields,
    },
    registry::LookupSpan,
};

/// Writes `s` as a JSON string, quotes included.
fn write_str(w: &mut dyn fmt::Write, s: &str) -> fmt::Result {
    w.write_char('"')?;
    Escaped(w).write_str(s)?;
    w.write_char('"')
}

/// Escapes what is written through it as the inside of a JSON string.
struct Escaped<'w>(&'w mut dyn fmt::Write);

impl fmt::Write for Escaped<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut start = 0;
        for (i, b) in s.bytes().enumerate() {
            let escape = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..=0x1f => "",
                _ => continue,
            };
            self.0.write_str(&s[start..i])?;
            if escape.is_empty() {
                write!(self.0, "\\u{b:04x}")?;
            } else {
                self.0.write_str(escape)?;
            }
            start = i + 1;
        }
        self.0.write_str(&s[start..])
    }
}

/// Writes each field as `"name":value`, a comma before all but the very first.
struct Fields<'w> {
    out: &'w mut dyn fmt::Write,
    /// Whether a member was already written to the object being filled.
    comma: bool,
    /// Skip `log.*` fields (the metadata of a `log` record, kept out of span fields).
    skip_log: bool,
    result: fmt::Result,
}

impl<'w> Fields<'w> {
    fn new(out: &'w mut dyn fmt::Write, comma: bool, skip_log: bool) -> Self {
        Self { out, comma, skip_log, result: Ok(()) }
    }

    fn key(&mut self, field: &Field) -> Result<bool, fmt::Error> {
        self.result?;
        let name = field.name();
        if self.skip_log && name.starts_with("log.") {
            return Ok(false);
        }
        let name = name.strip_prefix("r#").unwrap_or(name);
        if self.comma {
            self.out.write_char(',')?;
        }
        self.comma = true;
        write_str(self.out, name)?;
        self.out.write_char(':')?;
        Ok(true)
    }

    fn value(&mut self, field: &Field, write: impl FnOnce(&mut dyn fmt::Write) -> fmt::Result) {
        self.result = match self.key(field) {
            Ok(true) => write(self.out),
            Ok(false) => Ok(()),
            Err(e) => Err(e),
        };
    }
}

impl Visit for Fields<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.value(field, |w| if value.is_finite() { write!(w, "{value}") } else { w.write_str("null") });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.value(field, |w| write!(w, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.value(field, |w| write!(w, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.value(field, |w| w.write_str(if value { "true" } else { "false" }));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.value(field, |w| write_str(w, value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.value(field, |w| {
            w.write_char('"')?;
            write!(Escaped(w), "{value:?}")?;
            w.write_char('"')
        });
    }
}

/// Span fields as a JSON object; a field recorded later is appended to the object in place.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonSpanFields;

impl<'w> FormatFields<'w> for JsonSpanFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        writer.write_char('{')?;
        let mut visitor = Fields::new(&mut writer, false, true);
        fields.record(&mut visitor);
        visitor.result?;
        writer.write_char('}')
    }

    fn add_fields(&self, current: &'w mut FormattedFields<Self>, fields: &tracing::span::Record<'_>) -> fmt::Result {
        if current.fields.is_empty() {
            return self.format_fields(current.as_writer(), fields);
        }
        // `{...}`: reopen the object, append, close it again.
        current.fields.pop();
        let comma = current.fields.len() > 1;
        let mut visitor = Fields::new(&mut current.fields, comma, true);
        fields.record(&mut visitor);
        let result = visitor.result;
        current.fields.push('}');
        result
    }
}

/// One JSON object per event, on a line of its own.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonLines;

impl<S> FormatEvent<S, JsonSpanFields> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonSpanFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        writer.write_str("{\"timestamp\":\"")?;
        SystemTime.format_time(&mut writer)?;
        writer.write_str("\",\"level\":\"")?;
        writer.write_str(meta.level().as_str())?;
        writer.write_char('"')?;
        let mut visitor = Fields::new(&mut writer, true, false);
        event.record(&mut visitor);
        visitor.result?;
        writer.write_str(",\"target\":")?;
        write_str(&mut writer, meta.target())?;
        let leaf = event.parent().and_then(|id| ctx.span(id)).or_else(|| ctx.lookup_current());
        if let Some(leaf) = leaf {
            writer.write_str(",\"spans\":[")?;
            for (i, span) in leaf.scope().from_root().enumerate() {
                if i > 0 {
                    writer.write_char(',')?;
                }
                let extensions = span.extensions();
                let fields = extensions.get::<FormattedFields<JsonSpanFields>>().map(|f| f.fields.as_str());
                // `{"a":1}` becomes `{"a":1,"name":"..."}`; no fields, `{"name":"..."}`.
                match fields.and_then(|f| f.strip_suffix('}')).filter(|f| f.len() > 1) {
                    Some(open) => {
                        writer.write_str(open)?;
                        writer.write_str(",\"name\":")?;
                    }
                    None => writer.write_str("{\"name\":")?,
                }
                write_str(&mut writer, span.metadata().name())?;
                writer.write_char('}')?;
            }
            writer.write_char(']')?;
        }
        writer.write_str("}\n")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::{Arc, Mutex};

    use serde_json::{json, Value};
    use tracing_subscriber::{fmt::MakeWriter, layer::SubscriberExt};

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    fn lines(run: impl FnOnce()) -> Vec<Value> {
        let out = Captured::default();
        let layer = tracing_subscriber::fmt::layer()
            .fmt_fields(JsonSpanFields)
            .event_format(JsonLines)
            .with_writer(out.clone());
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), run);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
    }

    #[test]
    fn an_event_carries_its_fields_target_and_spans_with_fields_recorded_later() {
        let found = lines(|| {
            let outer = tracing::info_span!("http.request", request_id = "r-1", route = tracing::field::Empty);
            let _outer = outer.enter();
            let inner = tracing::info_span!("actor.handle", r#type = "Ping");
            let _inner = inner.enter();
            outer.record("route", "/wallets/{id}");
            outer.record("status", 200);
            tracing::warn!(status = 503u16, ratio = 0.5, ok = true, delta = -3, error = %"a \"quoted\"\nline\u{1}", "request completed");
        });
        assert_eq!(found.len(), 1);
        let line = &found[0];
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["message"], "request completed");
        assert_eq!(line["status"], 503);
        assert_eq!(line["ratio"], 0.5);
        assert_eq!(line["ok"], true);
        assert_eq!(line["delta"], -3);
        assert_eq!(line["error"], "a \"quoted\"\nline\u{1}");
        assert_eq!(line["target"], module_path!());
        assert!(line["timestamp"].as_str().is_some_and(|t| t.ends_with('Z') && t.contains('T')), "{line}");
        assert_eq!(
            line["spans"],
            json!([
                {"name": "http.request", "request_id": "r-1", "route": "/wallets/{id}"},
                {"name": "actor.handle", "type": "Ping"},
            ])
        );
    }

    #[test]
    fn spans_without_fields_and_events_outside_spans_are_valid_lines() {
        let found = lines(|| {
            tracing::info!("outside");
            let span = tracing::info_span!("bare");
            let _span = span.enter();
            span.record("late", "x");
            tracing::info!(n = 1u64, "inside");
        });
        assert_eq!(found.len(), 2);
        assert!(found[0].get("spans").is_none(), "{}", found[0]);
        assert_eq!(found[1]["spans"], json!([{"name": "bare"}]));
        assert_eq!(found[1]["n"], 1);
    }
}
