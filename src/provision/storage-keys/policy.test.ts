import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StorageError } from '../../errors.js';
import { deployerIamPolicy, deployerS3Policy, identityName, tenantPolicy } from './policy.js';

describe('tenantPolicy', () => {
  it('prefix mode: the listing conditioned on the folder, objects under it only', () => {
    assert.deepEqual(tenantPolicy({ tenant: 'tenant_x', mode: 'prefix', bucket: 'shared', prefix: 'tenant_x/' }), {
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'ListOwnFolder',
          Effect: 'Allow',
          Action: 's3:ListBucket',
          Resource: 'arn:aws:s3:::shared',
          Condition: { StringLike: { 's3:prefix': ['tenant_x/', 'tenant_x/*'] } },
        },
        {
          Sid: 'ObjectsOfOwnFolder',
          Effect: 'Allow',
          Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
          Resource: 'arn:aws:s3:::shared/tenant_x/*',
        },
      ],
    });
  });

  it('bucket mode: the whole own bucket', () => {
    assert.deepEqual(tenantPolicy({ tenant: 'tenant_x', mode: 'bucket', bucket: 'superfasttt-x', prefix: '' }), {
      Version: '2012-10-17',
      Statement: [
        { Sid: 'ListOwnBucket', Effect: 'Allow', Action: 's3:ListBucket', Resource: 'arn:aws:s3:::superfasttt-x' },
        {
          Sid: 'ObjectsOfOwnBucket',
          Effect: 'Allow',
          Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
          Resource: 'arn:aws:s3:::superfasttt-x/*',
        },
      ],
    });
  });

  it('never grants a wildcard action, another bucket, or a folder without its slash', () => {
    for (const mode of ['prefix', 'bucket'] as const) {
      const doc = tenantPolicy({ tenant: 'tenant_x', mode, bucket: 'b', prefix: mode === 'prefix' ? 'tenant_x/' : '' });
      for (const s of doc.Statement) {
        assert.equal(s.Effect, 'Allow');
        for (const action of [s.Action].flat()) assert.doesNotMatch(action, /\*/);
        for (const resource of [s.Resource].flat()) assert.match(resource, /^arn:aws:s3:::b(\/|$)/);
      }
    }
    for (const prefix of ['tenant_x', '', '/', 'tenant_*/', 'tenant_${aws:username}/']) {
      assert.throws(() => tenantPolicy({ tenant: 'tenant_x', mode: 'prefix', bucket: 'b', prefix }), StorageError);
    }
  });

  it('fits the 2,048 characters of an inline user policy for the longest names', () => {
    const tenant = `tenant_${'a'.repeat(56)}`;
    const doc = tenantPolicy({ tenant, mode: 'prefix', bucket: 'b'.repeat(63), prefix: `${tenant}/` });
    assert.ok(JSON.stringify(doc).length < 2048);
  });
});

describe('deployerIamPolicy', () => {
  it('every change on the users under /superfasttt/ only; reading a user anywhere, to recognise ours', () => {
    const doc = deployerIamPolicy();
    assert.equal(doc.Statement.length, 2);
    const [manage, read] = doc.Statement;
    assert.equal(manage?.Resource, 'arn:aws:iam::*:user/superfasttt/*');
    assert.deepEqual([manage?.Action].flat().sort(), [
      'iam:CreateAccessKey',
      'iam:CreateUser',
      'iam:DeleteAccessKey',
      'iam:DeleteUser',
      'iam:DeleteUserPolicy',
      'iam:GetUserPolicy',
      'iam:ListAccessKeys',
      'iam:ListUserPolicies',
      'iam:PutUserPolicy',
      'iam:TagUser',
    ]);
    assert.deepEqual(
      { ...read },
      {
        Sid: 'RecogniseTenantStorageUsers',
        Effect: 'Allow',
        Action: 'iam:GetUser',
        Resource: 'arn:aws:iam::*:user/*',
      },
    );
  });
});

describe('deployerS3Policy', () => {
  it('the shared bucket and its objects; with bucket mode, the superfasttt-* buckets; nothing else', () => {
    const prefix = deployerS3Policy('tenant-files', false);
    assert.deepEqual(
      prefix.Statement.map((s) => s.Resource),
      ['arn:aws:s3:::tenant-files', 'arn:aws:s3:::tenant-files/*'],
    );
    const both = deployerS3Policy('tenant-files', true);
    assert.deepEqual(both.Statement.flatMap((s) => [s.Action].flat()).sort(), [
      's3:CreateBucket',
      's3:DeleteBucket',
      's3:DeleteObject',
      's3:DeleteObject',
      's3:GetObject',
      's3:GetObject',
      's3:ListBucket',
      's3:ListBucket',
      's3:PutObject',
      's3:PutObject',
    ]);
    assert.ok(both.Statement.every((s) => s.Effect === 'Allow' && !JSON.stringify(s).includes('ListAllMyBuckets')));
    assert.deepEqual(deployerS3Policy(undefined, false).Statement, []);
  });
});

describe('identityName', () => {
  it('is the tenant identifier, plain or opaque', () => {
    assert.equal(identityName({ tenant: 'tenant_acme' }), 'tenant_acme');
    assert.equal(identityName({ tenant: 'tenant_0123456789abcdef0123' }), 'tenant_0123456789abcdef0123');
    const longest = `tenant_${'a'.repeat(56)}`;
    assert.equal(identityName({ tenant: longest }), longest);
  });

  it('refuses what IAM would refuse', () => {
    for (const tenant of ['', 'a/b', 'a b', 'x'.repeat(65), 'tenant_é']) {
      assert.throws(() => identityName({ tenant }), StorageError);
    }
  });
});
