/**
 * Per-tenant storage keys through AWS IAM (issue 14): one IAM user per tenant, under the path
 * /superfasttt/, tagged with the tenant's identifier, holding one inline policy (policy.ts: its folder
 * of the shared bucket, or its own bucket, nothing else) and its access keys (AWS allows two).
 *
 * Never someone else's user: a user of that name outside /superfasttt/, or tagged for another tenant
 * (or not tagged), is refused before anything is changed, and the deployer's own IAM rights
 * (deployerIamPolicy()) reach only users under /superfasttt/ anyway.
 *
 * The SDK is loaded on first use. Every request is bounded (the deployer's S3 timeout, three attempts)
 * and so is every operation as a whole; every failure is a StorageError (exit 6) naming the tenant,
 * the IAM operation and what to do, never a secret (the secret of a created key is registered for
 * redaction before it is returned).
 */
import { isDeepStrictEqual } from 'node:util';
import type { DeployerStorage } from '../../config/targets.js';
import { StorageError } from '../../errors.js';
import { registerSecret } from '../../redact.js';
import { isTlsFailure } from '../../tls-failure.js';
import { MAX_ATTEMPTS, operationDeadlineMs, operationSignal, whyAborted } from '../../storage/client.js';
import { causeNamed, type SdkError } from '../../storage/s3-errors.js';
import { deployerIamPolicy, IAM_PATH, identityName, POLICY_NAME, TENANT_TAG, tenantPolicy } from './policy.js';
import type { IssuedKey, KeyInfo, KeyProvider, KeyScope } from './provider.js';

export type IamModule = typeof import('@aws-sdk/client-iam');

let iamModule: Promise<IamModule> | undefined;

/** Loaded once, on first need: runs that issue no IAM key never pay for it. */
export function loadIam(): Promise<IamModule> {
  iamModule ??= import('@aws-sdk/client-iam').then(
    (mod) => (mod as IamModule & { default?: IamModule }).default ?? mod,
  );
  return iamModule;
}

/** The deployer's account, and where its IAM is when it is not AWS's (the tests' local IAM). */
export type IamAccount = DeployerStorage & { iamEndpoint?: string };

/** IAM's error code: `Code` as answered, or the SDK's class name without its Exception suffix. */
export function iamCode(error: unknown): string {
  const e = (error ?? {}) as SdkError;
  return (e.Code ?? e.name ?? '').replace(/Exception$/, '').slice(0, 100);
}

/** The IAM code a StorageError of send() was made from. */
const codeOf = (error: unknown): string | undefined => (error as { iamCode?: string } | null)?.iamCode;

/** The rights policy.ts gives the deployer, as one line for messages. */
const DEPLOYER_RIGHTS =
  deployerIamPolicy()
    .Statement.map((s) => `${[s.Action].flat().join(', ')} on ${[s.Resource].flat().join(', ')}`)
    .join('; ') + ' (the policy of docs/provisioning.md#aws-iam)';

/** A failed IAM operation as one message: the tenant, the operation, what IAM said, and the fix. */
export function iamFailure(error: unknown, operation: string, scope: KeyScope, account: IamAccount): StorageError {
  const vars = account.vars;
  const e = (error ?? {}) as SdkError;
  const code = iamCode(error);
  const errno = e.code ?? '';
  const status = e.$metadata?.httpStatusCode;
  const where = account.iamEndpoint ?? `AWS IAM (${account.region})`;
  const endpointFix = account.iamEndpoint
    ? `check the IAM endpoint ${account.iamEndpoint} and the network to it`
    : 'check the network to AWS IAM (iam.amazonaws.com, HTTPS)';
  // What IAM says is cut: a hostile endpoint could make it as long as it likes.
  const said = (e.message ?? String(error)).slice(0, 200);
  const fail = (message: string, fix: string) =>
    new StorageError(
      `storage keys: IAM ${operation} for ${scope.tenant} (user ${IAM_PATH}${scope.tenant}) at ${where}: ${message}`,
      fix,
      { cause: error },
    );

  const deadline = causeNamed(error, 'OperationDeadline');
  if (deadline) {
    const within = deadline.ms === undefined ? '' : ` within ${deadline.ms / 1000} s`;
    return fail(`did not complete${within} (${MAX_ATTEMPTS} attempts of ${account.timeoutSec} s)`, endpointFix);
  }
  switch (code) {
    case 'InvalidClientTokenId':
      return fail(
        "the deployer's access key id is unknown to IAM",
        `check ${vars.accessKey}: per-tenant IAM keys need an AWS key of the account that owns the buckets`,
      );
    case 'SignatureDoesNotMatch':
      return fail(
        'the request signature does not match: the secret key is wrong for this access key',
        `check ${vars.secretKey} (copied whole, no extra spaces or newline)`,
      );
    case 'RequestExpired':
    case 'RequestTimeTooSkewed':
      return fail("this machine's clock differs too much from AWS's", 'synchronise the clock (NTP)');
    case 'AccessDenied':
    case 'AccessDeniedException':
    case 'UnauthorizedOperation':
      return fail(
        `access denied: the deployer's key lacks iam:${operation}`,
        `grant the deployer's key (${vars.accessKey}) ${DEPLOYER_RIGHTS}`,
      );
    case 'LimitExceeded':
      return operation === 'CreateAccessKey'
        ? fail(
            'the user already has two access keys, the most AWS allows',
            'run provision with --revoke-old-storage-keys: the keys not in use are deleted, which frees one',
          )
        : fail(`an IAM quota is reached: ${said}`, 'raise the quota (IAM console, Service Quotas) or clean up users');
    case 'DeleteConflict':
      return fail(
        `the user still holds something provision did not give it: ${said}`,
        `detach its managed policies and groups, delete its login profile and MFA devices (IAM console), then retry`,
      );
    case 'MalformedPolicyDocument':
      return fail(`IAM refused the policy document: ${said}`, 'this is a bug, report it');
    case 'ValidationError':
    case 'InvalidInput':
      return fail(`IAM refused the request: ${said}`, 'this is a bug, report it');
    case 'Throttling':
    case 'ThrottlingException':
    case 'ServiceFailure':
      return fail(`IAM is busy or failing (${code}) after ${e.$metadata?.attempts ?? 'several'} attempt(s)`, 'retry');
  }
  if (status === 403) {
    return fail(`access denied (HTTP 403${code ? `, ${code}` : ''})`, `grant the deployer's key ${DEPLOYER_RIGHTS}`);
  }
  if (status !== undefined && status >= 500) {
    return fail(`IAM answered HTTP ${status} (${code || 'server error'})`, `IAM has an outage; retry later`);
  }
  if (errno === 'ENOTFOUND' || errno === 'EAI_AGAIN') {
    return fail(`the IAM host name does not resolve (DNS, ${errno})`, endpointFix);
  }
  if (isTlsFailure(errno, e.message)) {
    return fail(
      `TLS failed: ${said}`,
      `${endpointFix}, and that its certificate is trusted (NODE_EXTRA_CA_CERTS for a private CA)`,
    );
  }
  if (
    code === 'TimeoutError' ||
    code === 'AbortError' ||
    code === 'RequestTimeout' ||
    errno === 'ETIMEDOUT' ||
    /timed? ?out/i.test(e.message ?? '')
  ) {
    return fail(`no answer within ${account.timeoutSec} s`, endpointFix);
  }
  if (['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE'].includes(errno)) {
    return fail(`IAM is unreachable (${errno})`, endpointFix);
  }
  return fail(`${code || errno || 'error'}: ${said}${status ? ` (HTTP ${status})` : ''}`, endpointFix);
}

interface IamUserInfo {
  Path?: string;
  Arn?: string;
  Tags?: Array<{ Key?: string; Value?: string }>;
}

/** Why the user found under the tenant's name is not provision's user of this tenant, or undefined. */
function notOurs(user: IamUserInfo, scope: KeyScope): string | undefined {
  if (user.Path !== IAM_PATH)
    return `it exists outside ${IAM_PATH} (path ${user.Path ?? '/'}): not a user provision made`;
  const tag = user.Tags?.find((t) => t.Key === TENANT_TAG)?.Value;
  if (tag === undefined) return `it is not tagged ${TENANT_TAG}: not a user provision made`;
  if (tag !== scope.tenant) return `it is tagged ${TENANT_TAG}=${tag.slice(0, 80)}: another tenant's user`;
  return undefined;
}

/** The IAM provider: `account` is the deployer's (its keys, region, timeout), `iamEndpoint` for a local IAM. */
export function iamProvider(account: IamAccount): KeyProvider & { close(): void } {
  const timeoutMs = account.timeoutSec * 1000;
  const deadlineMs = operationDeadlineMs(account.timeoutSec);
  let session: Promise<{ iam: IamModule; client: InstanceType<IamModule['IAMClient']> }> | undefined;
  const open = () => {
    session ??= loadIam().then((iam) => ({
      iam,
      client: new iam.IAMClient({
        region: account.region,
        ...(account.iamEndpoint && { endpoint: account.iamEndpoint }),
        credentials: account.credentials,
        maxAttempts: MAX_ATTEMPTS,
        requestHandler: {
          connectionTimeout: timeoutMs,
          socketTimeout: timeoutMs,
          requestTimeout: timeoutMs,
          throwOnRequestTimeout: true,
        },
      }),
    }));
    return session;
  };

  /** Sends one IAM command within the operation's deadline; failures become StorageErrors. */
  async function send<T>(
    operation: string,
    scope: KeyScope,
    make: (iam: IamModule) => object,
    signal: AbortSignal,
  ): Promise<T> {
    const { iam, client } = await open();
    const abortSignal = operationSignal(signal, deadlineMs);
    try {
      return (await client.send(make(iam) as never, { abortSignal })) as T;
    } catch (error) {
      throw Object.assign(iamFailure(whyAborted(abortSignal, error), operation, scope, account), {
        iamCode: iamCode(error),
      });
    }
  }

  /** Runs `call`, turning IAM's NoSuchEntity into `fallback`. */
  async function unlessMissing<T, F>(call: Promise<T>, fallback: F): Promise<T | F> {
    try {
      return await call;
    } catch (error) {
      if (codeOf(error) === 'NoSuchEntity') return fallback;
      throw error;
    }
  }

  /** The tenant's user, undefined when it does not exist; refused when it is not provision's user of this tenant. */
  async function ourUser(scope: KeyScope, signal: AbortSignal): Promise<IamUserInfo | undefined> {
    const UserName = identityName(scope);
    const got = await unlessMissing(
      send<{ User?: IamUserInfo }>('GetUser', scope, (iam) => new iam.GetUserCommand({ UserName }), signal),
      undefined,
    );
    if (!got?.User) return undefined;
    const why = notOurs(got.User, scope);
    if (why) {
      throw new StorageError(
        `storage keys: the IAM user ${UserName} (${got.User.Arn ?? 'no ARN'}) cannot be the storage identity of ` +
          `${scope.tenant}: ${why}; it is left untouched`,
        `rename or delete that user if it is not needed, or give ${scope.tenant} its storage keys another way ` +
          '(STORAGE_ACCESS_KEY / STORAGE_SECRET_KEY of its own)',
      );
    }
    return got.User;
  }

  async function ensurePolicy(scope: KeyScope, signal: AbortSignal): Promise<void> {
    const UserName = identityName(scope);
    const wanted = tenantPolicy(scope);
    const listed = await send<{ PolicyNames?: string[] }>(
      'ListUserPolicies',
      scope,
      (iam) => new iam.ListUserPoliciesCommand({ UserName }),
      signal,
    );
    const others = (listed.PolicyNames ?? []).filter((name) => name !== POLICY_NAME);
    if (others.length > 0) {
      throw new StorageError(
        `storage keys: the IAM user ${UserName} of ${scope.tenant} holds inline policies provision did not give it ` +
          `(${others.slice(0, 5).join(', ')}): its keys could reach more than its storage`,
        `delete those policies from the user (IAM console, or aws iam delete-user-policy), then retry`,
      );
    }
    let current: unknown;
    if (listed.PolicyNames?.includes(POLICY_NAME)) {
      const got = await unlessMissing(
        send<{ PolicyDocument?: string }>(
          'GetUserPolicy',
          scope,
          (iam) => new iam.GetUserPolicyCommand({ UserName, PolicyName: POLICY_NAME }),
          signal,
        ),
        undefined,
      );
      try {
        // IAM answers the document URL-encoded.
        current = got?.PolicyDocument === undefined ? undefined : JSON.parse(decodeURIComponent(got.PolicyDocument));
      } catch {
        current = undefined; // unreadable: rewritten
      }
    }
    if (isDeepStrictEqual(current, wanted)) return;
    await send(
      'PutUserPolicy',
      scope,
      (iam) =>
        new iam.PutUserPolicyCommand({ UserName, PolicyName: POLICY_NAME, PolicyDocument: JSON.stringify(wanted) }),
      signal,
    );
  }

  const provider: KeyProvider & { close(): void } = {
    name: account.iamEndpoint ? `IAM at ${account.iamEndpoint}` : 'AWS IAM',

    async ensureIdentity(scope, signal) {
      const UserName = identityName(scope);
      let created = false;
      if (!(await ourUser(scope, signal))) {
        try {
          await send(
            'CreateUser',
            scope,
            (iam) =>
              new iam.CreateUserCommand({ UserName, Path: IAM_PATH, Tags: [{ Key: TENANT_TAG, Value: scope.tenant }] }),
            signal,
          );
          created = true;
        } catch (error) {
          // Created meanwhile (another run): checked like any existing user.
          if (codeOf(error) !== 'EntityAlreadyExists') throw error;
          await ourUser(scope, signal);
        }
      }
      await ensurePolicy(scope, signal);
      return { created };
    },

    async listKeys(scope, signal) {
      if (!(await ourUser(scope, signal))) return [];
      const UserName = identityName(scope);
      const got = await unlessMissing(
        send<{ AccessKeyMetadata?: Array<{ AccessKeyId?: string; Status?: string; CreateDate?: Date }> }>(
          'ListAccessKeys',
          scope,
          (iam) => new iam.ListAccessKeysCommand({ UserName }),
          signal,
        ),
        { AccessKeyMetadata: [] },
      );
      return (got.AccessKeyMetadata ?? []).flatMap((k): KeyInfo[] =>
        k.AccessKeyId
          ? [
              {
                accessKeyId: k.AccessKeyId,
                active: k.Status === 'Active',
                ...(k.CreateDate && { createdAt: new Date(k.CreateDate).toISOString() }),
              },
            ]
          : [],
      );
    },

    async createKey(scope, signal) {
      const UserName = identityName(scope);
      if (!(await ourUser(scope, signal))) {
        throw new StorageError(
          `storage keys: IAM CreateAccessKey for ${scope.tenant}: its user ${IAM_PATH}${UserName} does not exist`,
          'this is a bug (ensureIdentity first), report it',
        );
      }
      const got = await send<{ AccessKey?: { AccessKeyId?: string; SecretAccessKey?: string; CreateDate?: Date } }>(
        'CreateAccessKey',
        scope,
        (iam) => new iam.CreateAccessKeyCommand({ UserName }),
        signal,
      );
      const key = got.AccessKey;
      if (key?.SecretAccessKey) registerSecret(key.SecretAccessKey);
      if (!key?.AccessKeyId || !key.SecretAccessKey) {
        throw new StorageError(
          `storage keys: IAM CreateAccessKey for ${scope.tenant}: the answer holds no access key`,
          'the IAM endpoint is not a well-behaved IAM; check it',
        );
      }
      const issued: IssuedKey = { accessKeyId: key.AccessKeyId, secretAccessKey: key.SecretAccessKey };
      if (key.CreateDate) issued.createdAt = new Date(key.CreateDate).toISOString();
      return issued;
    },

    async deleteKey(scope, accessKeyId, signal) {
      if (!(await ourUser(scope, signal))) return;
      const UserName = identityName(scope);
      await unlessMissing(
        send(
          'DeleteAccessKey',
          scope,
          (iam) => new iam.DeleteAccessKeyCommand({ UserName, AccessKeyId: accessKeyId }),
          signal,
        ),
        undefined,
      );
    },

    async deleteIdentity(scope, signal) {
      if (!(await ourUser(scope, signal))) return;
      const UserName = identityName(scope);
      for (const key of await provider.listKeys(scope, signal)) {
        await provider.deleteKey(scope, key.accessKeyId, signal);
      }
      const listed = await unlessMissing(
        send<{ PolicyNames?: string[] }>(
          'ListUserPolicies',
          scope,
          (iam) => new iam.ListUserPoliciesCommand({ UserName }),
          signal,
        ),
        { PolicyNames: [] },
      );
      for (const PolicyName of listed.PolicyNames ?? []) {
        await unlessMissing(
          send('DeleteUserPolicy', scope, (iam) => new iam.DeleteUserPolicyCommand({ UserName, PolicyName }), signal),
          undefined,
        );
      }
      await unlessMissing(
        send('DeleteUser', scope, (iam) => new iam.DeleteUserCommand({ UserName }), signal),
        undefined,
      );
    },

    /** Closes the client's connections (the next call opens new ones). */
    close() {
      const closing = session;
      session = undefined;
      closing?.then(({ client }) => client.destroy()).catch(() => {});
    },
  };
  return provider;
}
