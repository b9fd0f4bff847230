#!/usr/bin/env python3
"""Seeds the local AWS emulator (tests/support/moto_harness.py) with a sample
organization for `scripts/demo` and `scripts/bench`: a management account and
member accounts whose IAM users have keys of many ages, some unused, some
doubled, some exempt. Prints shell `export` lines for the management
account's admin key (a fake key that exists only inside the emulator).

    seed-demo.py --endpoint http://127.0.0.1:PORT [--accounts N] [--users N] [--service-user]
"""
import argparse, datetime as dt, json, random, sys, urllib.request

import boto3

NAMES = ["Production", "Staging", "Sandbox", "Data", "Security", "Shared"]
PEOPLE = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
          "ivan", "judy", "mallory", "niaj", "olivia", "peggy", "rupert", "sybil"]


def control(endpoint, path, body):
    req = urllib.request.Request(f"{endpoint}/_rekey/{path}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req) as r:
        return json.load(r)


def iso(days_ago):
    t = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days_ago)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def client(endpoint, service, creds):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", **creds)


def seed_account(endpoint, account_id, iam, users, rng):
    iam.create_group(GroupName="break-glass")
    for i in range(users):
        name = PEOPLE[i % len(PEOPLE)] + ("" if i < len(PEOPLE) else str(i))
        path = "/system/" if i % 11 == 7 else "/"
        tags = [{"Key": "team", "Value": rng.choice(["web", "data", "ops"])}]
        if i % 13 == 5:
            tags.append({"Key": "rekey:exempt", "Value": "true"})
        iam.create_user(UserName=name, Path=path, Tags=tags)
        if i % 17 == 3:
            iam.add_user_to_group(GroupName="break-glass", UserName=name)
        for k in range(2 if i % 9 == 4 else (0 if i % 10 == 9 else 1)):
            key = iam.create_access_key(UserName=name)["AccessKey"]
            age = rng.choice([3, 12, 40, 75, 95, 130, 200, 400, 800, 1100])
            used = None if i % 6 == 2 else rng.randint(0, min(age, 60))
            if k == 1 and i % 2 == 0:
                iam.update_access_key(UserName=name, AccessKeyId=key["AccessKeyId"], Status="Inactive")
            control(endpoint, "key_dates", {
                "account_id": account_id, "user_name": name, "access_key_id": key["AccessKeyId"],
                "create_date": iso(age), "last_used_date": None if used is None else iso(used),
                "last_used_service": None if used is None else rng.choice(["s3", "ec2", "sts", "dynamodb"]),
                "last_used_region": None if used is None else rng.choice(["us-east-1", "eu-west-1"]),
            })


def seed_service_user(endpoint, account_id, creds):
    """A CI bot whose key lives in Secrets Manager and SSM, bound by its tag."""
    iam = client(endpoint, "iam", creds)
    iam.create_user(UserName="ci-deployer", Tags=[{
        "Key": "rekey:destination", "Value": "secretsmanager:ci/deployer ssm:/ci/deployer"}])
    iam.put_user_policy(UserName="ci-deployer", PolicyName="whoami", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Resource": "*", "Action": ["sts:GetCallerIdentity"]}]}))
    key = iam.create_access_key(UserName="ci-deployer")["AccessKey"]
    control(endpoint, "key_dates", {"account_id": account_id, "user_name": "ci-deployer",
                                    "access_key_id": key["AccessKeyId"], "create_date": iso(120),
                                    "last_used_date": iso(1), "last_used_service": "sts",
                                    "last_used_region": "us-east-1"})
    value = json.dumps({"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"],
                        "Region": "us-east-1"})
    client(endpoint, "secretsmanager", creds).create_secret(Name="ci/deployer", SecretString=value)
    client(endpoint, "ssm", creds).put_parameter(Name="/ci/deployer", Value=value, Type="SecureString")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--accounts", type=int, default=4, help="member accounts")
    ap.add_argument("--users", type=int, default=8, help="users per account")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--dev-credentials", help="write a credentials file with profile demo-dev: "
                    "user `developer` of the management account, key 120 days old")
    ap.add_argument("--service-user", action="store_true",
                    help="in the first member account, user `ci-deployer` (key 120 days old) bound by "
                         "its rekey:destination tag to secret ci/deployer and parameter /ci/deployer, "
                         "both holding its key")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    names = [NAMES[i % len(NAMES)] + ("" if i < len(NAMES) else f"-{i}") for i in range(args.accounts)]
    org = control(args.endpoint, "new_org", {"members": args.accounts, "member_names": names})
    admin = {"aws_access_key_id": org["access_key_id"], "aws_secret_access_key": org["secret_access_key"]}
    mgmt = org["management_account_id"]
    seed_account(args.endpoint, mgmt, client(args.endpoint, "iam", admin), max(2, args.users // 2), rng)
    control(args.endpoint, "root_keys", {"account_id": mgmt, "keys": [{"active": True, "last_rotated": iso(500), "last_used_date": None}]})
    sts = client(args.endpoint, "sts", admin)
    for m in org["members"]:
        c = sts.assume_role(RoleArn=f"arn:aws:iam::{m['account_id']}:role/OrganizationAccountAccessRole",
                            RoleSessionName="seed")["Credentials"]
        creds = {"aws_access_key_id": c["AccessKeyId"], "aws_secret_access_key": c["SecretAccessKey"],
                 "aws_session_token": c["SessionToken"]}
        seed_account(args.endpoint, m["account_id"], client(args.endpoint, "iam", creds), args.users, rng)
        if args.service_user and m is org["members"][0]:
            seed_service_user(args.endpoint, m["account_id"], creds)
    if args.dev_credentials:
        iam = client(args.endpoint, "iam", admin)
        iam.create_user(UserName="developer")
        iam.put_user_policy(UserName="developer", PolicyName="own-keys", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
                "iam:ListAccessKeys", "iam:CreateAccessKey", "iam:UpdateAccessKey", "iam:DeleteAccessKey"]}]}))
        key = iam.create_access_key(UserName="developer")["AccessKey"]
        control(args.endpoint, "key_dates", {"account_id": mgmt, "user_name": "developer",
                                             "access_key_id": key["AccessKeyId"], "create_date": iso(120),
                                             "last_used_date": iso(1), "last_used_service": "s3",
                                             "last_used_region": "us-east-1"})
        with open(args.dev_credentials, "w") as f:
            f.write("# a developer's credentials file; rekey keeps this comment\n"
                    f"[demo-dev]\naws_access_key_id = {key['AccessKeyId']}\n"
                    f"aws_secret_access_key = {key['SecretAccessKey']}\nregion = us-east-1\n")
    print(f"export AWS_ACCESS_KEY_ID={org['access_key_id']}")
    print(f"export AWS_SECRET_ACCESS_KEY={org['secret_access_key']}")
    print(f"export REKEY_DEMO_MANAGEMENT_ACCOUNT={mgmt}")
    print(f"seeded {1 + len(org['members'])} accounts", file=sys.stderr)


if __name__ == "__main__":
    main()
