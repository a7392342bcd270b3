/**
 * A local AWS IAM for the tests (issue 14: per-tenant IAM users and keys), speaking the IAM Query protocol the AWS
 * SDK speaks: POST form-encoded `Action=...&Version=2010-05-08`, XML answers in the IAM namespace, errors as
 * `<ErrorResponse>` with AWS's codes and statuses. Loopback only, HTTP and HTTPS (the harness's certificate).
 *
 * Actions: CreateUser (Path, UserName, Tags), GetUser, DeleteUser (DeleteConflict while keys or inline policies
 * remain), ListUsers (PathPrefix), PutUserPolicy / GetUserPolicy / DeleteUserPolicy / ListUserPolicies,
 * CreateAccessKey (two per user, then LimitExceeded) / ListAccessKeys / DeleteAccessKey / UpdateAccessKey (Status).
 *
 * Every request must be SigV4-signed (service `iam`): the signature is recomputed with the secret of the key it
 * names (test/harness/sigv4.ts) and compared. The admin key the server is started with stands for the account's
 * root: everything is allowed. A key of an IAM user may call IAM too, and is then authorised by its own inline
 * policies through @cloud-copilot/iam-simulate (action `iam:<Action>` on the user's ARN), as AWS would.
 * An unknown key id answers 403 InvalidClientTokenId, a wrong secret 403 SignatureDoesNotMatch.
 *
 * Policy documents are checked when put (JSON, then iam-simulate's validation: MalformedPolicyDocument), and
 * GetUserPolicy answers them URL-encoded, as IAM does. `keyOf()` lets the S3 front (test/harness/s3-policy.ts)
 * find a key's secret, status and the inline policies of its user.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type http from 'node:http';
import { runSimulation } from '@cloud-copilot/iam-simulate';
import { listenHttpAndHttps } from './net.js';
import { readBody, verifySigV4 } from './sigv4.js';

export interface AwsKey {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface IamAccessKey extends AwsKey {
  status: 'Active' | 'Inactive';
  createDate: Date;
}

export interface IamUser {
  userName: string;
  path: string;
  userId: string;
  arn: string;
  createDate: Date;
  tags: Array<{ Key: string; Value: string }>;
  /** Inline policies by name: the JSON documents as put. */
  policies: Map<string, string>;
  keys: IamAccessKey[];
}

/** What a key id stands for: the admin (root), or an IAM user's key. */
export type KeyOwner = { kind: 'admin'; secret: string } | { kind: 'user'; user: IamUser; key: IamAccessKey };

export interface IamServer {
  /** http://127.0.0.1:PORT */
  url: string;
  httpsUrl: string;
  caFile: string;
  port: number;
  region: string;
  accountId: string;
  admin: AwsKey;
  /** The users, in creation order (live objects: read only). */
  users(): IamUser[];
  user(name: string): IamUser | undefined;
  /** The owner of an access key id (deleted keys: undefined). */
  keyOf(accessKeyId: string): KeyOwner | undefined;
  /** Every IAM request, with the action asked and the status answered. */
  requests: Array<{ action: string; accessKeyId: string | undefined; status: number; code?: string }>;
  stop(): Promise<void>;
}

const NS = 'https://iam.amazonaws.com/doc/2010-05-08/';
const NAME = /^[\w+=,.@-]{1,64}$/;
const POLICY_NAME = /^[\w+=,.@-]{1,128}$/;
const PATH = /^\/([\x21-\x7e]*\/)?$/;

class IamError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly type: 'Sender' | 'Receiver' = 'Sender',
  ) {
    super(message);
  }
}

export const xml = (value: string): string =>
  value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

function randomId(prefix: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const bytes = randomBytes(16);
  return prefix + Array.from(bytes, (b) => alphabet[b % 32]).join('');
}

/** A 40-character secret, as AWS generates. */
function randomSecret(): string {
  return randomBytes(30).toString('base64').replace(/\+/g, 'x').replace(/\//g, 'y');
}

export function newAwsKey(): AwsKey {
  return { accessKeyId: randomId('AKIA'), secretAccessKey: randomSecret() };
}

/** Runs AWS's evaluation logic for one request of `user`: true when its inline policies allow it. */
export async function policiesAllow(
  user: IamUser,
  accountId: string,
  action: string,
  resource: string,
  contextVariables: Record<string, string | string[]>,
): Promise<boolean> {
  const result = await runSimulation(
    {
      request: {
        principal: user.arn,
        action,
        resource: { resource, accountId },
        contextVariables: {
          'aws:username': user.userName,
          'aws:userid': user.userId,
          'aws:PrincipalArn': user.arn,
          'aws:PrincipalAccount': accountId,
          'aws:PrincipalType': 'User',
          'aws:CurrentTime': new Date().toISOString(),
          'aws:SourceIp': '127.0.0.1',
          ...contextVariables,
        },
      },
      identityPolicies: [...user.policies].map(([name, doc]) => ({ name, policy: JSON.parse(doc) })),
      serviceControlPolicies: [],
      resourceControlPolicies: [],
    },
    {},
  );
  // Errors (an action or resource the evaluator rejects) and wildcard results are refusals.
  return result.resultType === 'single' && result.overallResult === 'Allowed';
}

/** MalformedPolicyDocument unless the document is JSON and a valid identity policy. */
async function checkPolicy(document: string, accountId: string): Promise<void> {
  let policy: unknown;
  try {
    policy = JSON.parse(document);
  } catch {
    throw new IamError(400, 'MalformedPolicyDocument', 'Syntax errors in policy.');
  }
  const result = await runSimulation(
    {
      request: {
        principal: `arn:aws:iam::${accountId}:user/check`,
        action: 's3:GetObject',
        resource: { resource: 'arn:aws:s3:::check/check', accountId },
        contextVariables: {},
      },
      identityPolicies: [{ name: 'check', policy }],
      serviceControlPolicies: [],
      resourceControlPolicies: [],
    },
    {},
  );
  if (result.resultType === 'error' && result.errors.identityPolicyErrors) {
    const first = Object.values(result.errors.identityPolicyErrors).flat()[0];
    throw new IamError(400, 'MalformedPolicyDocument', first?.message ?? 'Invalid policy.');
  }
}

function member<T>(items: T[], render: (item: T) => string): string {
  return items.map((item) => `<member>${render(item)}</member>`).join('');
}

function userXml(user: IamUser, withTags: boolean): string {
  return (
    `<Path>${xml(user.path)}</Path><UserName>${xml(user.userName)}</UserName><UserId>${user.userId}</UserId>` +
    `<Arn>${xml(user.arn)}</Arn><CreateDate>${iso(user.createDate)}</CreateDate>` +
    (withTags && user.tags.length > 0
      ? `<Tags>${member(user.tags, (t) => `<Key>${xml(t.Key)}</Key><Value>${xml(t.Value)}</Value>`)}</Tags>`
      : '')
  );
}

export interface StartIamOptions {
  /** The admin (root) key; a fresh one by default. */
  admin?: AwsKey;
  accountId?: string;
}

export async function startIam(options: StartIamOptions = {}): Promise<IamServer> {
  const accountId = options.accountId ?? '123456789012';
  const admin = options.admin ?? newAwsKey();
  const region = 'us-east-1';
  const users = new Map<string, IamUser>();
  const keys = new Map<string, { user: IamUser; key: IamAccessKey }>();
  const requests: IamServer['requests'] = [];

  const keyOf = (accessKeyId: string): KeyOwner | undefined => {
    if (accessKeyId === admin.accessKeyId) return { kind: 'admin', secret: admin.secretAccessKey };
    const found = keys.get(accessKeyId);
    return found && { kind: 'user', ...found };
  };

  const required = (params: URLSearchParams, name: string, pattern: RegExp = NAME): string => {
    const value = params.get(name);
    if (value === null || value === '') {
      throw new IamError(
        400,
        'ValidationError',
        `1 validation error detected: Value at '${name}' failed to satisfy constraint: Member must not be null`,
      );
    }
    if (!pattern.test(value)) {
      throw new IamError(
        400,
        'ValidationError',
        `1 validation error detected: Value at '${name}' failed to satisfy constraint: ` +
          'Member must satisfy regular expression pattern',
      );
    }
    return value;
  };
  const userNamed = (name: string): IamUser => {
    const user = users.get(name);
    if (!user) throw new IamError(404, 'NoSuchEntity', `The user with name ${name} cannot be found.`);
    return user;
  };
  /** The UserName parameter, or the caller's own user when absent (the admin has none). */
  const targetUser = (params: URLSearchParams, caller: KeyOwner): IamUser => {
    const name = params.get('UserName');
    if (name) return userNamed(required(params, 'UserName'));
    if (caller.kind === 'user') return caller.user;
    throw new IamError(400, 'ValidationError', 'Must specify userName when calling with non-User credentials');
  };
  const keyMetadata = (user: IamUser, key: IamAccessKey) =>
    `<UserName>${xml(user.userName)}</UserName><AccessKeyId>${key.accessKeyId}</AccessKeyId>` +
    `<Status>${key.status}</Status><CreateDate>${iso(key.createDate)}</CreateDate>`;
  const findKey = (params: URLSearchParams, caller: KeyOwner) => {
    const id = required(params, 'AccessKeyId', /^[\w]{16,128}$/);
    const user = params.get('UserName') ? userNamed(required(params, 'UserName')) : undefined;
    const found = keys.get(id);
    const owner = user ?? (caller.kind === 'user' ? caller.user : found?.user);
    if (!found || !owner || found.user !== owner) {
      throw new IamError(404, 'NoSuchEntity', `The Access Key with id ${id} cannot be found.`);
    }
    return found;
  };

  /** Answers one authorised action: the inside of <ActionResult>, or undefined for none. */
  async function act(action: string, params: URLSearchParams, caller: KeyOwner): Promise<string | undefined> {
    switch (action) {
      case 'CreateUser': {
        const userName = required(params, 'UserName');
        const path = params.get('Path') || '/';
        if (!PATH.test(path) || path.length > 512) {
          throw new IamError(400, 'ValidationError', "The specified value for 'path' is invalid.");
        }
        if ([...users.keys()].some((n) => n.toLowerCase() === userName.toLowerCase())) {
          throw new IamError(409, 'EntityAlreadyExists', `User with name ${userName} already exists.`);
        }
        const tags: IamUser['tags'] = [];
        for (let i = 1; params.has(`Tags.member.${i}.Key`); i++) {
          tags.push({
            Key: params.get(`Tags.member.${i}.Key`) ?? '',
            Value: params.get(`Tags.member.${i}.Value`) ?? '',
          });
        }
        if (tags.length > 50) throw new IamError(409, 'LimitExceeded', 'Cannot exceed quota for TagsPerUser: 50');
        const user: IamUser = {
          userName,
          path,
          userId: randomId('AIDA'),
          arn: `arn:aws:iam::${accountId}:user${path}${userName}`,
          createDate: new Date(),
          tags,
          policies: new Map(),
          keys: [],
        };
        users.set(userName, user);
        return `<User>${userXml(user, true)}</User>`;
      }
      case 'GetUser': {
        if (!params.get('UserName') && caller.kind === 'admin') {
          return (
            `<User><UserId>${accountId}</UserId><Arn>arn:aws:iam::${accountId}:root</Arn>` +
            `<CreateDate>${iso(new Date(0))}</CreateDate></User>`
          );
        }
        return `<User>${userXml(targetUser(params, caller), true)}</User>`;
      }
      case 'DeleteUser': {
        const user = userNamed(required(params, 'UserName'));
        if (user.keys.length > 0) {
          throw new IamError(409, 'DeleteConflict', 'Cannot delete entity, must delete access keys first.');
        }
        if (user.policies.size > 0) {
          throw new IamError(409, 'DeleteConflict', 'Cannot delete entity, must delete policies first.');
        }
        users.delete(user.userName);
        return undefined;
      }
      case 'ListUsers': {
        const prefix = params.get('PathPrefix') || '/';
        const listed = [...users.values()].filter((u) => u.path.startsWith(prefix));
        return `<Users>${member(listed, (u) => userXml(u, false))}</Users><IsTruncated>false</IsTruncated>`;
      }
      case 'PutUserPolicy': {
        const user = userNamed(required(params, 'UserName'));
        const name = required(params, 'PolicyName', POLICY_NAME);
        const document = params.get('PolicyDocument') ?? '';
        if (!document) throw new IamError(400, 'ValidationError', 'PolicyDocument must not be null');
        if (document.length > 2048) {
          throw new IamError(409, 'LimitExceeded', 'Maximum policy size of 2048 bytes exceeded for user');
        }
        await checkPolicy(document, accountId);
        user.policies.set(name, document);
        return undefined;
      }
      case 'GetUserPolicy': {
        const user = userNamed(required(params, 'UserName'));
        const name = required(params, 'PolicyName', POLICY_NAME);
        const document = user.policies.get(name);
        if (document === undefined) {
          throw new IamError(404, 'NoSuchEntity', `The user policy with name ${name} cannot be found.`);
        }
        return (
          `<UserName>${xml(user.userName)}</UserName><PolicyName>${xml(name)}</PolicyName>` +
          `<PolicyDocument>${xml(encodeURIComponent(document))}</PolicyDocument>`
        );
      }
      case 'DeleteUserPolicy': {
        const user = userNamed(required(params, 'UserName'));
        const name = required(params, 'PolicyName', POLICY_NAME);
        if (!user.policies.delete(name)) {
          throw new IamError(404, 'NoSuchEntity', `The user policy with name ${name} cannot be found.`);
        }
        return undefined;
      }
      case 'ListUserPolicies': {
        const user = userNamed(required(params, 'UserName'));
        return `<PolicyNames>${member([...user.policies.keys()], xml)}</PolicyNames><IsTruncated>false</IsTruncated>`;
      }
      case 'CreateAccessKey': {
        const user = targetUser(params, caller);
        if (user.keys.length >= 2) {
          throw new IamError(409, 'LimitExceeded', 'Cannot exceed quota for AccessKeysPerUser: 2');
        }
        const key: IamAccessKey = { ...newAwsKey(), status: 'Active', createDate: new Date() };
        user.keys.push(key);
        keys.set(key.accessKeyId, { user, key });
        return (
          `<AccessKey>${keyMetadata(user, key)}` +
          `<SecretAccessKey>${xml(key.secretAccessKey)}</SecretAccessKey></AccessKey>`
        );
      }
      case 'ListAccessKeys': {
        const user = targetUser(params, caller);
        return (
          `<UserName>${xml(user.userName)}</UserName>` +
          `<AccessKeyMetadata>${member(user.keys, (k) => keyMetadata(user, k))}</AccessKeyMetadata>` +
          '<IsTruncated>false</IsTruncated>'
        );
      }
      case 'DeleteAccessKey': {
        const { user, key } = findKey(params, caller);
        user.keys = user.keys.filter((k) => k !== key);
        keys.delete(key.accessKeyId);
        return undefined;
      }
      case 'UpdateAccessKey': {
        const { key } = findKey(params, caller);
        const status = params.get('Status');
        if (status !== 'Active' && status !== 'Inactive') {
          throw new IamError(400, 'ValidationError', "Value at 'status' failed to satisfy constraint");
        }
        key.status = status;
        return undefined;
      }
      default:
        throw new IamError(400, 'InvalidAction', `Could not find operation ${action} for version 2010-05-08`);
    }
  }

  /** The resource an IAM user's key asks about, for its own policies. */
  const resourceOf = (action: string, params: URLSearchParams, caller: KeyOwner & { kind: 'user' }): string => {
    if (action === 'ListUsers') return '*';
    const name = params.get('UserName');
    const path = action === 'CreateUser' ? params.get('Path') || '/' : (users.get(name ?? '')?.path ?? '/');
    return name ? `arn:aws:iam::${accountId}:user${path}${name}` : caller.user.arn;
  };

  const handler = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const body = await readBody(req);
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const params = new URLSearchParams(url.search);
    if (String(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
      for (const [k, v] of new URLSearchParams(body.toString('utf8'))) params.append(k, v);
    }
    const action = params.get('Action') ?? '';
    const record: IamServer['requests'][number] = { action, accessKeyId: undefined, status: 0 };
    requests.push(record);
    const requestId = randomUUID();
    const answer = (status: number, text: string) => {
      record.status = status;
      res.writeHead(status, { 'content-type': 'text/xml', 'x-amzn-requestid': requestId });
      res.end(`<?xml version="1.0" encoding="UTF-8"?>\n${text}`);
    };
    try {
      const verdict = await verifySigV4(
        req,
        body,
        'iam',
        (id) => (keyOf(id)?.kind === 'admin' ? admin.secretAccessKey : keys.get(id)?.key.secretAccessKey),
        {
          code: 'InvalidClientTokenId',
          message: 'The security token included in the request is invalid.',
        },
      );
      if (!verdict.ok) {
        record.accessKeyId = verdict.accessKeyId;
        throw new IamError(403, verdict.code, verdict.message);
      }
      record.accessKeyId = verdict.by.accessKeyId;
      const caller = keyOf(verdict.by.accessKeyId);
      if (!caller)
        throw new IamError(403, 'InvalidClientTokenId', 'The security token included in the request is invalid.');
      if (caller.kind === 'user') {
        if (caller.key.status !== 'Active') {
          throw new IamError(403, 'InvalidClientTokenId', 'The security token included in the request is invalid.');
        }
        if (!/^[A-Za-z]+$/.test(action)) throw new IamError(400, 'InvalidAction', 'Missing Action');
        const resource = resourceOf(action, params, caller);
        if (!(await policiesAllow(caller.user, accountId, `iam:${action}`, resource, {}))) {
          throw new IamError(
            403,
            'AccessDenied',
            `User: ${caller.user.arn} is not authorized to perform: iam:${action} on resource: ${resource}`,
          );
        }
      }
      if (params.get('Version') !== '2010-05-08') {
        throw new IamError(
          400,
          'InvalidAction',
          `Could not find operation ${action} for version ${params.get('Version')}`,
        );
      }
      const result = await act(action, params, caller);
      answer(
        200,
        `<${action}Response xmlns="${NS}">` +
          (result === undefined ? '' : `<${action}Result>${result}</${action}Result>`) +
          `<ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></${action}Response>`,
      );
    } catch (error) {
      const e =
        error instanceof IamError
          ? error
          : new IamError(500, 'ServiceFailure', String((error as Error)?.message ?? error), 'Receiver');
      record.code = e.code;
      answer(
        e.status,
        `<ErrorResponse xmlns="${NS}"><Error><Type>${e.type}</Type><Code>${e.code}</Code>` +
          `<Message>${xml(e.message)}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`,
      );
    }
  };
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    handler(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  };

  const server = await listenHttpAndHttps(onRequest);
  let stopped = false;
  return {
    url: server.httpUrl,
    httpsUrl: server.httpsUrl,
    caFile: server.caFile,
    port: server.port,
    region,
    accountId,
    admin,
    users: () => [...users.values()],
    user: (name) => users.get(name),
    keyOf,
    requests,
    async stop() {
      if (stopped) return;
      stopped = true;
      await server.close();
    },
  };
}
