#!/bin/sh
# Runs once in the minio/mc container: plays the deployment machine for storage. It creates the
# shared bucket and a key limited to the tenant's folder (the per-tenant IAM policy of the README).
set -eu
mc alias set local http://minio:9000 "$(cat /run/secrets/minio_root_user)" "$(cat /run/secrets/minio_root_password)"
mc mb --ignore-existing local/superfasttt-central
cat > /tmp/tenant-policy.json <<'JSON'
{
  "Version": "2012-10-17",
  "Statement": [
    { "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": ["arn:aws:s3:::superfasttt-central"],
      "Condition": { "StringLike": { "s3:prefix": ["tenant_clienta/*", "tenant_clienta/"] } } },
    { "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
      "Resource": ["arn:aws:s3:::superfasttt-central/tenant_clienta/*"] }
  ]
}
JSON
mc admin policy create local tenant-clienta /tmp/tenant-policy.json 2>/dev/null || true
mc admin user add local "$(cat /run/secrets/s3_access_key)" "$(cat /run/secrets/s3_secret_key)"
mc admin policy attach local tenant-clienta --user "$(cat /run/secrets/s3_access_key)" 2>/dev/null || true
