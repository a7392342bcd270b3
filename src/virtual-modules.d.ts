/** Provided at build time by build/build.mjs from migrations/*.sql. */
declare module 'virtual:migrations' {
  const migrations: import('./steps/migration-plan.js').Migration[];
  export default migrations;
}
