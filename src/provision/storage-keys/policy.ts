/**
 * Per-tenant storage keys through AWS IAM (issue 14): the policies, as pure data.
 *
 * - tenantPolicy(scope): the inline policy of a tenant's IAM user, least privilege. Prefix mode: listing the
 *   shared bucket only under its folder (s3:ListBucket conditioned on s3:prefix), reading, writing and deleting
 *   only objects under it. Bucket mode: the same on its whole own bucket. Nothing else: no bucket creation or
 *   deletion, no ListAllMyBuckets, no other bucket.
 * - deployerIamPolicy(): what the deployer's own key needs in IAM to manage those users, and only those:
 *   users under the path /superfasttt/.
 * - identityName(scope): the IAM user's name, the tenant's identifier (tenant_acme, tenant_<hash>).
 */
import { StorageError } from '../../errors.js';
import { BUCKET_PREFIX } from '../tenants.js';
import type { KeyScope } from './provider.js';

/** The path of every user provision creates: its rights and its refusals are drawn along it. */
export const IAM_PATH = '/superfasttt/';
/** The name of the one inline policy of a tenant's user. */
export const POLICY_NAME = 'superfasttt-tenant-storage';
/** The tag naming the tenant a user was created for: a user tagged for another tenant is never taken over. */
export const TENANT_TAG = 'superfasttt:tenant';

export interface PolicyStatement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action: string | string[];
  Resource: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

export interface PolicyDocument {
  Version: '2012-10-17';
  Statement: PolicyStatement[];
}

export const OBJECT_ACTIONS = ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'];

/** IAM user names: 1 to 64 characters of letters, digits and + = , . @ _ - */
const IAM_NAME = /^[\w+=,.@-]{1,64}$/;

/** The IAM user of the tenant: its identifier (tenant identifiers always fit IAM's rules). */
export function identityName(scope: Pick<KeyScope, 'tenant'>): string {
  if (!IAM_NAME.test(scope.tenant)) {
    throw new StorageError(
      `storage keys: the tenant identifier ${JSON.stringify(scope.tenant.slice(0, 80))} cannot name an IAM user ` +
        '(1 to 64 characters of letters, digits and + = , . @ _ -)',
      'tenant identifiers are tenant_<name> (lowercase letters, digits, _) or tenant_<hash>: this is a bug, report it',
    );
  }
  return scope.tenant;
}

/** The least-privilege inline policy of the tenant's user: exactly its folder, or exactly its bucket. */
export function tenantPolicy(scope: KeyScope): PolicyDocument {
  const bucketArn = `arn:aws:s3:::${scope.bucket}`;
  if (scope.mode === 'bucket') {
    return {
      Version: '2012-10-17',
      Statement: [
        { Sid: 'ListOwnBucket', Effect: 'Allow', Action: 's3:ListBucket', Resource: bucketArn },
        { Sid: 'ObjectsOfOwnBucket', Effect: 'Allow', Action: OBJECT_ACTIONS, Resource: `${bucketArn}/*` },
      ],
    };
  }
  const prefix = scope.prefix;
  if (!prefix.endsWith('/') || prefix === '/' || /[*?$]/.test(prefix)) {
    // A prefix without its slash would grant tenant_a* (tenant_ab/ too); wildcards and variables more still.
    throw new StorageError(
      `storage keys: the folder ${JSON.stringify(prefix.slice(0, 80))} of ${scope.tenant} cannot scope a policy ` +
        '(it must end with / and hold no * ? $)',
      'this is a bug, report it',
    );
  }
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'ListOwnFolder',
        Effect: 'Allow',
        Action: 's3:ListBucket',
        Resource: bucketArn,
        Condition: { StringLike: { 's3:prefix': [prefix, `${prefix}*`] } },
      },
      { Sid: 'ObjectsOfOwnFolder', Effect: 'Allow', Action: OBJECT_ACTIONS, Resource: `${bucketArn}/${prefix}*` },
    ],
  };
}

/**
 * The IAM actions the deployer's key needs on the users under /superfasttt/ only: everything that
 * creates, changes or deletes.
 */
export const DEPLOYER_IAM_ACTIONS = [
  'iam:CreateUser',
  'iam:TagUser',
  'iam:DeleteUser',
  'iam:PutUserPolicy',
  'iam:GetUserPolicy',
  'iam:DeleteUserPolicy',
  'iam:ListUserPolicies',
  'iam:CreateAccessKey',
  'iam:ListAccessKeys',
  'iam:DeleteAccessKey',
];

/**
 * The policy to attach to the deployer (besides its S3 rights, deployerS3Policy): managing the tenants'
 * users, nothing else. GetUser is on every user: IAM authorises a GetUser of a user that does not exist
 * yet against the ARN without path (user/tenant_acme), so a grant limited to /superfasttt/ would answer
 * AccessDenied where provision needs NoSuchEntity, and a user of that name elsewhere could not be
 * recognised as someone else's. It reads a user's path, ARN and tags, and changes nothing.
 */
export function deployerIamPolicy(): PolicyDocument {
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'ManageTenantStorageUsers',
        Effect: 'Allow',
        Action: DEPLOYER_IAM_ACTIONS,
        Resource: `arn:aws:iam::*:user${IAM_PATH}*`,
      },
      { Sid: 'RecogniseTenantStorageUsers', Effect: 'Allow', Action: 'iam:GetUser', Resource: 'arn:aws:iam::*:user/*' },
    ],
  };
}

/**
 * The S3 rights of the deployer's key: in `sharedBucket` (prefix mode) the tenants' folders, their
 * proofs of ownership and (deprovision --purge-storage) their deletion; with `bucketMode`, the
 * tenants' own buckets, all named superfasttt-<name>: created, proven, emptied and deleted. Nothing
 * else: no ListAllMyBuckets, no other bucket.
 */
export function deployerS3Policy(sharedBucket: string | undefined, bucketMode: boolean): PolicyDocument {
  const statements: PolicyStatement[] = [];
  if (sharedBucket) {
    statements.push(
      { Sid: 'ListSharedBucket', Effect: 'Allow', Action: 's3:ListBucket', Resource: `arn:aws:s3:::${sharedBucket}` },
      {
        Sid: 'TenantFoldersOfSharedBucket',
        Effect: 'Allow',
        Action: OBJECT_ACTIONS,
        Resource: `arn:aws:s3:::${sharedBucket}/*`,
      },
    );
  }
  if (bucketMode) {
    statements.push(
      {
        Sid: 'TenantBuckets',
        Effect: 'Allow',
        Action: ['s3:CreateBucket', 's3:DeleteBucket', 's3:ListBucket'],
        Resource: `arn:aws:s3:::${BUCKET_PREFIX}*`,
      },
      {
        Sid: 'ObjectsOfTenantBuckets',
        Effect: 'Allow',
        Action: OBJECT_ACTIONS,
        Resource: `arn:aws:s3:::${BUCKET_PREFIX}*/*`,
      },
    );
  }
  return { Version: '2012-10-17', Statement: statements };
}
