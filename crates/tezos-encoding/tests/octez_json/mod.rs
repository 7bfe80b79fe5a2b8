//! Comparing our JSON view of a decoded request with Octez's, leaf by leaf.

use serde_json::Value;

pub fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Every scalar leaf both sides have at the same path must be equal; returns how many
/// were compared.
pub fn compare(octez: &Value, ours: &Value, path: &str, bad: &mut Vec<String>) -> usize {
    match (octez, ours) {
        (Value::Object(a), Value::Object(b)) => a
            .iter()
            .filter_map(|(k, va)| {
                b.get(k)
                    .map(|vb| compare(va, vb, &format!("{path}.{k}"), bad))
            })
            .sum(),
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .map(|(i, (va, vb))| compare(va, vb, &format!("{path}[{i}]"), bad))
            .sum(),
        _ => match (scalar(octez), scalar(ours)) {
            (Some(x), Some(y)) => {
                if x != y {
                    bad.push(format!("{path}: octez {x}, ours {y}"));
                }
                1
            }
            _ => 0,
        },
    }
}
