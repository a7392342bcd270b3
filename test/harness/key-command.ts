/**
 * A working PROVISION_STORAGE_KEY_COMMAND for the tests: a Node CLI that drives the harness's local IAM
 * (test/harness/iam.ts) with @aws-sdk/client-iam, as an operator's wrapper around their provider's CLI would.
 * Its IAM endpoint is its first argument (a fixed argument of the JSON-array form of the command).
 */
import { chmodSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

/** The working CLI: an AWS-IAM provider, its endpoint given as a fixed argument, the admin key from the env. */
const workingCli = (sdk: string) => `#!/usr/bin/env node
import { createRequire } from 'node:module';
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const sdk = createRequire(${JSON.stringify(sdk)})('@aws-sdk/client-iam');
const [endpoint, op, tenant, mode, bucket, prefix, keyId] = process.argv.slice(2);
const iam = new sdk.IAMClient({
  region: process.env.PROVISION_STORAGE_REGION,
  endpoint,
  maxAttempts: 1,
  credentials: {
    accessKeyId: process.env.PROVISION_STORAGE_ACCESS_KEY,
    secretAccessKey: process.env.PROVISION_STORAGE_SECRET_KEY,
  },
});
const missing = (e) => ['NoSuchEntity', 'NoSuchEntityException'].includes(e.Code ?? e.name);
const ignoreMissing = (p) => p.catch((e) => { if (!missing(e)) throw e; });
const objects = mode === 'prefix' ? \`arn:aws:s3:::\${bucket}/\${prefix}*\` : \`arn:aws:s3:::\${bucket}/*\`;
const list = { Effect: 'Allow', Action: 's3:ListBucket', Resource: \`arn:aws:s3:::\${bucket}\` };
if (mode === 'prefix') list.Condition = { StringLike: { 's3:prefix': [\`\${prefix}*\`, prefix] } };
const policy = {
  Version: '2012-10-17',
  Statement: [
    list,
    { Effect: 'Allow', Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'], Resource: objects },
  ],
};
const UserName = tenant;
async function main() {
  switch (op) {
    case 'ensure-identity': {
      let created = false;
      try {
        await iam.send(new sdk.GetUserCommand({ UserName }));
      } catch (e) {
        if (!missing(e)) throw e;
        await iam.send(new sdk.CreateUserCommand({ UserName, Path: '/superfasttt/' }));
        created = true;
      }
      const PolicyDocument = JSON.stringify(policy);
      await iam.send(new sdk.PutUserPolicyCommand({ UserName, PolicyName: 'storage', PolicyDocument }));
      return { created };
    }
    case 'list-keys': {
      try {
        const { AccessKeyMetadata = [] } = await iam.send(new sdk.ListAccessKeysCommand({ UserName }));
        return {
          keys: AccessKeyMetadata.map((k) => ({
            accessKeyId: k.AccessKeyId,
            active: k.Status === 'Active',
            createdAt: k.CreateDate.toISOString(),
          })),
        };
      } catch (e) {
        if (missing(e)) return { keys: [] };
        throw e;
      }
    }
    case 'create-key': {
      const { AccessKey } = await iam.send(new sdk.CreateAccessKeyCommand({ UserName }));
      return { accessKeyId: AccessKey.AccessKeyId, secretAccessKey: AccessKey.SecretAccessKey };
    }
    case 'delete-key':
      await ignoreMissing(iam.send(new sdk.DeleteAccessKeyCommand({ UserName, AccessKeyId: keyId })));
      return {};
    case 'delete-identity': {
      try {
        const keys = await iam.send(new sdk.ListAccessKeysCommand({ UserName }));
        for (const k of keys.AccessKeyMetadata ?? [])
          await iam.send(new sdk.DeleteAccessKeyCommand({ UserName, AccessKeyId: k.AccessKeyId }));
        const policies = await iam.send(new sdk.ListUserPoliciesCommand({ UserName }));
        for (const PolicyName of policies.PolicyNames ?? [])
          await iam.send(new sdk.DeleteUserPolicyCommand({ UserName, PolicyName }));
        await iam.send(new sdk.DeleteUserCommand({ UserName }));
      } catch (e) {
        if (!missing(e)) throw e;
      }
      return {};
    }
    default:
      throw new Error('unknown operation ' + op);
  }
}
main().then(
  (out) => process.stdout.write(JSON.stringify(out) + '\\n'),
  (e) => {
    process.stderr.write(\`iam-keys: \${op} failed: \${e.Code ?? e.name}\\n\`);
    process.exit(1);
  },
);
`;

/** Writes the working CLI into `dir` (executable) and returns its path. */
export function writeIamKeyCommand(dir: string): string {
  const path = join(dir, 'iam-keys.mjs');
  writeFileSync(path, workingCli(createRequire(import.meta.url).resolve('@aws-sdk/client-iam')));
  chmodSync(path, 0o755);
  return path;
}
