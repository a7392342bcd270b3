/** Email step: the provider accepts our credentials (SMTP AUTH, or a SendGrid key with mail.send). */
import { EmailError } from '../errors.js';
import { createEmailProvider, loadEmailLibrary } from '../email/provider.js';
import type { Step } from './step.js';

export const emailStep: Step = {
  name: 'email',
  errorClass: EmailError,
  prepare(env) {
    loadEmailLibrary(env)?.catch(() => {}); // run() awaits it again and reports
  },
  async run(ctx) {
    const provider = await createEmailProvider(ctx.env);
    if (!provider) return 'EMAIL_PROVIDER is not set: email not checked';
    ctx.email = provider; // the welcome step sends with it; the command closes it
    return await provider.verify(ctx.signal);
  },
};
