/**
 * Node's and OpenSSL's codes for a TLS failure (certificate not trusted, host name mismatch,
 * handshake refused), as PostgreSQL, S3, SMTP and SendGrid failures carry them: one pattern, so that
 * every classifier recognises the same failures.
 */
const TLS_FAILURE_CODE =
  /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|ERR_TLS|ERR_SSL|EPROTO|HOSTNAME_MISMATCH/;

/** What the libraries say when they give no code (nodemailer's SMTP errors, some SDK wrappers). */
const TLS_FAILURE_MESSAGE =
  /certificate|self[- ]signed|unable to verify|wrong version number|handshake failure|\bssl|\btls\b/i;

/** Whether an error code (errno-style string) is a TLS failure. */
export function isTlsFailureCode(code: unknown): boolean {
  return typeof code === 'string' && TLS_FAILURE_CODE.test(code);
}

/** A TLS failure by its code, or by its message when a library dropped the code. */
export function isTlsFailure(code: unknown, message: string | undefined): boolean {
  return isTlsFailureCode(code) || TLS_FAILURE_MESSAGE.test(message ?? '');
}
