/**
 * The bootstrap's steps, in the order check runs and reports them. The bootstrap starts each as soon
 * as the steps it needs (and its `after`) passed: the database chain, storage and email at the same
 * time (each waits on its own network), the super admin once all of them passed.
 */
import { databaseStep } from './database.js';
import { emailStep } from './email.js';
import { lockStep } from './lock.js';
import { migrationsStep } from './migrations.js';
import { schemaStep } from './schema.js';
import type { AnyStep } from './step.js';
import { storageStep } from './storage.js';
import { superAdminStep } from './superadmin.js';
import { welcomeStep } from './welcome.js';

export const BOOTSTRAP_STEPS: readonly AnyStep[] = [
  databaseStep,
  schemaStep,
  lockStep,
  migrationsStep,
  storageStep,
  emailStep,
  superAdminStep,
  welcomeStep,
];
