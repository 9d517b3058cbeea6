/** The SQL builders of pg-boss 10 that TrackedBossDb matches statements against. */
declare module 'pg-boss/src/plans.js' {
  const plans: {
    completeJobs(schema: string): string;
    failJobsById(schema: string): string;
    createQueue(schema: string): string;
  };
  export default plans;
}
