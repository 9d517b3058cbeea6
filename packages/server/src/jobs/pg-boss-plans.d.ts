/** The SQL builders of pg-boss 10 that TrackedBossDb matches statements against. */
declare module 'pg-boss/src/plans.js' {
  const plans: {
    completeJobs(schema: string): string;
    failJobsById(schema: string): string;
    createQueue(schema: string): string;
    /** The whole install (schema, tables, functions, version row) in one locked transaction. */
    create(schema: string, version: number): string;
    /** `SELECT to_regclass('<schema>.version') as name` */
    versionTableExists(schema: string): string;
  };
  export default plans;
}
