use serde_json::{Value, json};

use super::*;

fn actions(doc: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for s in doc["Statement"].as_array().unwrap() {
        for a in s["Action"].as_array().unwrap() {
            out.push(a.as_str().unwrap().to_string());
        }
    }
    out
}

#[test]
fn no_mode_grants_a_wildcard_action_or_a_way_to_grant_itself_more() {
    for &mode in Mode::ALL {
        for &format in Format::ALL {
            let doc = render(mode, format, &Scope::defaults(format)).unwrap();
            let all = actions(&doc);
            assert!(!all.is_empty(), "{mode:?}");
            for a in &all {
                assert!(!a.contains('*'), "{mode:?} grants {a}");
                assert!(
                    ![
                        "iam:PutUserPolicy",
                        "iam:AttachUserPolicy",
                        "iam:PutRolePolicy",
                        "iam:AttachRolePolicy",
                        "iam:CreatePolicyVersion",
                        "iam:PassRole"
                    ]
                    .contains(&a.as_str()),
                    "{mode:?} grants {a}"
                );
            }
            let mut sorted = all.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(
                sorted.len(),
                all.len(),
                "{mode:?} names an action twice: {all:?}"
            );
        }
    }
}

#[test]
fn resources_are_scoped_to_the_options() {
    let scope = Scope {
        account: "111122223333".into(),
        region: "eu-west-1".into(),
        table: "jt-1".into(),
        secrets_prefix: "ci/".into(),
        parameters_prefix: "/ci/".into(),
        ..Scope::defaults(Format::Json)
    };
    let doc = render(Mode::Service, Format::Json, &scope).unwrap();
    let by_sid = |sid: &str| {
        doc["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == sid)
            .unwrap_or_else(|| panic!("{sid} in {doc:#}"))["Resource"]
            .clone()
    };
    assert_eq!(
        by_sid("SecretsManagerDestinations"),
        json!("arn:aws:secretsmanager:eu-west-1:111122223333:secret:ci/*")
    );
    assert_eq!(
        by_sid("ParameterStoreDestinations"),
        json!("arn:aws:ssm:eu-west-1:111122223333:parameter/ci/*")
    );
    assert_eq!(
        by_sid("ServiceKeys"),
        json!("arn:aws:iam::111122223333:user/*")
    );
    let journal = render(Mode::Journal, Format::Json, &scope).unwrap();
    assert_eq!(
        journal["Statement"][0]["Resource"],
        json!("arn:aws:dynamodb:eu-west-1:111122223333:table/jt-1")
    );
    let own = render(Mode::RotateSelf, Format::Json, &scope).unwrap();
    assert_eq!(
        own["Statement"][0]["Resource"],
        json!("arn:aws:iam::111122223333:user/${aws:username}")
    );
}

#[test]
fn placeholders_become_refs_joins_and_attributes_in_cloudformation() {
    let scope = Scope {
        table: "${JournalTable}".into(),
        queue: "${WorkQueue.Arn}".into(),
        ..Scope::defaults(Format::Cloudformation)
    };
    let doc = render(Mode::Lambda, Format::Cloudformation, &scope).unwrap();
    let resource = |sid: &str| {
        doc["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == sid)
            .unwrap()["Resource"]
            .clone()
    };
    assert_eq!(
        resource("WorkQueue"),
        json!({"Fn::GetAtt": ["WorkQueue", "Arn"]})
    );
    assert_eq!(
        resource("Journal"),
        json!({"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":dynamodb:", {"Ref": "AWS::Region"},
                                 ":", {"Ref": "AWS::AccountId"}, ":table/", {"Ref": "JournalTable"}]]})
    );
    // No placeholder is left for CloudFormation to misread.
    assert!(!doc.to_string().contains("${"), "{doc:#}");
    // IAM's own policy variables stay as written.
    let own = render(
        Mode::RotateSelf,
        Format::Cloudformation,
        &Scope::defaults(Format::Cloudformation),
    )
    .unwrap();
    assert!(
        own.to_string().contains(":user/${aws:username}\"]"),
        "{own:#}"
    );
}

#[test]
fn a_bad_value_is_named_with_its_option() {
    type Spoil = fn(&mut Scope);
    let cases: &[(Spoil, &str)] = &[
        (|s| s.account = "12345".into(), "--account"),
        (|s| s.region = "moon".into(), "--region"),
        (|s| s.partition = "azure".into(), "--partition"),
        (|s| s.table = "a b".into(), "--table"),
        (|s| s.secrets_prefix = "x\"y".into(), "--secrets-prefix"),
        (
            |s| s.parameters_prefix = "ci/".into(),
            "--parameters-prefix",
        ),
        (|s| s.member_role = "role/evil".into(), "--member-role"),
        (|s| s.queue = "q*".into(), "--queue"),
        (|s| s.topic = String::new(), "--topic"),
        // Separators and non-ASCII: none of these names take them.
        (|s| s.secrets_prefix = "ci #1/".into(), "--secrets-prefix"),
        (|s| s.secrets_prefix = "clé/".into(), "--secrets-prefix"),
        (
            |s| s.parameters_prefix = "/a,b/".into(),
            "--parameters-prefix",
        ),
        (|s| s.table = "journal#1".into(), "--table"),
        (|s| s.member_role = "rekey member".into(), "--member-role"),
        (|s| s.member_role = "rôle".into(), "--member-role"),
    ];
    for (spoil, option) in cases {
        let mut scope = Scope::defaults(Format::Json);
        spoil(&mut scope);
        let err = render(Mode::Lambda, Format::Json, &scope).unwrap_err();
        assert_eq!(err.option, *option);
        assert!(err.to_string().starts_with(option), "{err}");
    }
}
