"""boto3 against the emulator: the acceptance scenario, one assertion per step.

Run by tests/clients.rs with AWS_ENDPOINT_URL and test credentials set; exits
non-zero with the failing step's message.
"""

import boto3
from botocore.exceptions import ClientError

client = boto3.client("secretsmanager")
T1, T2, T3 = "1" * 32, "2" * 32, "3" * 32


def error_code(call, **kwargs):
    try:
        call(**kwargs)
    except ClientError as error:
        return error.response["Error"]["Code"], error.response["Error"]["Message"]
    raise AssertionError(f"{call.__name__} succeeded but should have failed")


created = client.create_secret(Name="py/app", SecretString="v1", ClientRequestToken=T1)
assert created["VersionId"] == T1, created
arn = created["ARN"]

assert client.get_secret_value(SecretId="py/app", VersionStage="AWSCURRENT")["SecretString"] == "v1"
assert client.get_secret_value(SecretId=arn, VersionId=T1)["VersionStages"] == ["AWSCURRENT"]

put = client.put_secret_value(SecretId="py/app", SecretString="v2", ClientRequestToken=T2)
assert put["VersionStages"] == ["AWSCURRENT"], put
again = client.put_secret_value(SecretId="py/app", SecretString="v2", ClientRequestToken=T2)
assert again["VersionId"] == T2, again
code, message = error_code(client.put_secret_value, SecretId="py/app", SecretString="v9", ClientRequestToken=T2)
assert code == "ResourceExistsException", (code, message)
untokened = client.put_secret_value(SecretId="py/app", SecretString="v3")
assert untokened["VersionId"] not in (T1, T2), untokened

pending = client.put_secret_value(
    SecretId="py/app", SecretString="v4", ClientRequestToken=T3, VersionStages=["AWSPENDING"]
)
code, message = error_code(
    client.update_secret_version_stage, SecretId="py/app", VersionStage="AWSCURRENT", MoveToVersionId=T3
)
assert code == "InvalidParameterException", (code, message)
client.update_secret_version_stage(
    SecretId="py/app",
    VersionStage="AWSCURRENT",
    MoveToVersionId=T3,
    RemoveFromVersionId=untokened["VersionId"],
)
stages = {v["VersionId"]: sorted(v["VersionStages"]) for v in client.list_secret_version_ids(SecretId="py/app")["Versions"]}
assert stages[T3] == ["AWSCURRENT", "AWSPENDING"], stages
assert stages[untokened["VersionId"]] == ["AWSPREVIOUS"], stages
assert T1 not in stages and T2 not in stages, "versions without labels are listed only with IncludeDeprecated"

code, message = error_code(client.get_secret_value, SecretId="py/app", VersionId="9" * 32)
assert code == "ResourceNotFoundException", (code, message)

deleted = client.delete_secret(SecretId="py/app", RecoveryWindowInDays=7)
assert "DeletionDate" in deleted, deleted
code, message = error_code(client.get_secret_value, SecretId="py/app")
assert code == "InvalidRequestException", (code, message)
client.restore_secret(SecretId="py/app")
assert client.get_secret_value(SecretId="py/app")["SecretString"] == "v4"
assert client.describe_secret(SecretId="py/app")["Name"] == "py/app"

print("boto3 scenario passed")
