/** Email step: the provider accepts our credentials (SMTP AUTH, or a SendGrid key with mail.send). */
import type { EmailProvider } from '../email/mail.js';
import { createEmailProvider, loadEmailLibrary } from '../email/provider.js';
import { EmailError } from '../errors.js';
import { type Done, defineStep, done, type StepContext } from './step.js';

export const emailStep = defineStep({
  name: 'email',
  errorClass: EmailError,
  needs: {},
  prepare(config) {
    loadEmailLibrary(config.email)?.catch(() => {}); // the step awaits it again and reports
  },
  // Verifying sends nothing: the same in check and bootstrap.
  inspect: verify,
  apply: verify,
});

/** The provider, verified: the welcome step sends with it. Undefined when EMAIL_PROVIDER is unset. */
async function verify(ctx: StepContext): Promise<Done<EmailProvider | undefined>> {
  if (!ctx.config.email) return done('EMAIL_PROVIDER is not set: email not checked', undefined);
  const provider = await createEmailProvider(ctx.config.email);
  ctx.resources.add({ close: async () => provider.close(), destroy: () => provider.close() });
  return done(await provider.verify(ctx.signal), provider);
}
