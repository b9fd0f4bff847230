//! A policy document for a CloudFormation template: each string holding
//! `${…}` placeholders becomes a `Fn::Join` of its literal parts and the
//! template's values. `Fn::Join` rather than `Fn::Sub`, so that the same
//! JSON goes unchanged into a Serverless service, whose own variables are
//! written `${…}` too.

use serde_json::{Value, json};

/// `doc` with every placeholder made a template value: `${AWS::Region}` a
/// pseudo parameter, `${Name}` a `Ref`, `${Name.Attr}` a `Fn::GetAtt`.
/// IAM's own policy variables (`${aws:username}`) stay as written.
pub fn cloudformation(doc: &Value) -> Value {
    match doc {
        Value::String(s) => string(s),
        Value::Array(items) => Value::Array(items.iter().map(cloudformation).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), cloudformation(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn string(s: &str) -> Value {
    let mut parts: Vec<Value> = Vec::new();
    let mut literal = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        let name = &rest[start + 2..start + len];
        match reference(name) {
            Some(value) => {
                literal.push_str(&rest[..start]);
                if !literal.is_empty() {
                    parts.push(Value::String(std::mem::take(&mut literal)));
                }
                parts.push(value);
            }
            None => literal.push_str(&rest[..start + len + 1]),
        }
        rest = &rest[start + len + 1..];
    }
    literal.push_str(rest);
    if parts.is_empty() {
        return Value::String(literal);
    }
    if !literal.is_empty() {
        parts.push(Value::String(literal));
    }
    if parts.len() == 1 {
        return parts.pop().expect("one part");
    }
    json!({"Fn::Join": ["", parts]})
}

/// The template value `name` stands for, or None for anything else (an
/// IAM policy variable such as `aws:username`).
fn reference(name: &str) -> Option<Value> {
    if let Some(pseudo) = name.strip_prefix("AWS::") {
        return is_word(pseudo).then(|| json!({"Ref": name}));
    }
    match name.split_once('.') {
        Some((resource, attribute)) if is_word(resource) && is_word(attribute) => {
            Some(json!({"Fn::GetAtt": [resource, attribute]}))
        }
        None if is_word(name) => Some(json!({"Ref": name})),
        _ => None,
    }
}

fn is_word(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric())
}
