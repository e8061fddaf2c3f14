//! Dead letters: which ones an operator chose to replay, and the original message each one
//! carries, to be published again to the topic it came from.

use super::{InRecord, OutRecord};

/// Header prefix of what the consumer adds to a dead letter.
pub const HEADER_PREFIX: &str = "dlq-";

/// Header naming where a replayed message was taken from (`<dlq topic>/<partition>/<offset>`).
pub const REPLAYED_FROM: &str = "replayed-from";

/// The dead letters an operator chose: by coordinates, by reason, or all of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// `(partition, offset)` of each dead letter chosen.
    pub offsets: Vec<(i32, i64)>,
    /// Only dead letters with this `dlq-reason`.
    pub reason: Option<String>,
    /// Every dead letter (still filtered by `reason`).
    pub all: bool,
}

impl Selection {
    /// Whether it chooses anything at all.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty() && self.reason.is_none() && !self.all
    }

    /// Whether `letter` is chosen.
    pub fn chooses(&self, letter: &InRecord) -> bool {
        if let Some(reason) = &self.reason {
            if letter.header("dlq-reason") != Some(reason.as_str()) {
                return false;
            }
        }
        self.all || self.offsets.is_empty() || self.offsets.contains(&(letter.partition, letter.offset))
    }
}

/// Parse `<partition>:<offset>`.
pub fn parse_coordinates(text: &str) -> Result<(i32, i64), String> {
    let (p, o) = text.split_once(':').ok_or_else(|| format!("`{text}` is not <partition>:<offset>"))?;
    let partition = p.trim().parse().map_err(|_| format!("`{p}` is not a partition number"))?;
    let offset = o.trim().parse().map_err(|_| format!("`{o}` is not an offset"))?;
    Ok((partition, offset))
}

/// The original message of `letter`: its key, value and headers as they first arrived (the
/// dead-letter headers removed), plus where it was replayed from, for its original topic.
pub fn original(letter: &InRecord) -> Result<OutRecord, String> {
    let topic = letter
        .header("dlq-original-topic")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            format!("{}/{}/{} has no dlq-original-topic header", letter.topic, letter.partition, letter.offset)
        })?
        .to_owned();
    let mut headers: Vec<(String, Vec<u8>)> =
        letter.headers.iter().filter(|(k, _)| !k.starts_with(HEADER_PREFIX)).cloned().collect();
    headers.push((
        REPLAYED_FROM.to_owned(),
        format!("{}/{}/{}", letter.topic, letter.partition, letter.offset).into_bytes(),
    ));
    Ok(OutRecord { topic, key: letter.key.clone(), payload: letter.payload.clone().unwrap_or_default(), headers })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(partition: i32, offset: i64, reason: &str) -> InRecord {
        InRecord {
            topic: "pay.dlq".into(),
            partition,
            offset,
            key: Some(b"w".to_vec()),
            payload: Some(b"{}".to_vec()),
            headers: vec![
                ("request-id".into(), b"r-1".to_vec()),
                ("dlq-reason".into(), reason.as_bytes().to_vec()),
                ("dlq-original-topic".into(), b"pay".to_vec()),
                ("dlq-original-offset".into(), b"7".to_vec()),
            ],
            timestamp_ms: None,
        }
    }

    #[test]
    fn letters_are_chosen_by_coordinates_and_reason() {
        let by_offset = Selection { offsets: vec![(0, 3)], ..Selection::default() };
        assert!(by_offset.chooses(&letter(0, 3, "malformed")));
        assert!(!by_offset.chooses(&letter(0, 4, "malformed")));
        let by_reason = Selection { reason: Some("wallet_frozen".into()), ..Selection::default() };
        assert!(by_reason.chooses(&letter(1, 9, "wallet_frozen")));
        assert!(!by_reason.chooses(&letter(1, 9, "malformed")));
        assert!(Selection::default().is_empty());
        assert_eq!(parse_coordinates("2:15"), Ok((2, 15)));
        assert!(parse_coordinates("2").is_err() && parse_coordinates("a:1").is_err());
    }

    #[test]
    fn the_original_goes_back_to_its_topic_without_the_dead_letter_headers() {
        let out = original(&letter(0, 3, "malformed")).unwrap();
        assert_eq!(out.topic, "pay");
        assert_eq!(out.key.as_deref(), Some(&b"w"[..]));
        let names: Vec<&str> = out.headers.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, vec!["request-id", "replayed-from"]);
        assert_eq!(out.headers[1].1, b"pay.dlq/0/3".to_vec());
        let mut orphan = letter(0, 3, "malformed");
        orphan.headers.retain(|(k, _)| k != "dlq-original-topic");
        assert!(original(&orphan).is_err());
    }
}
