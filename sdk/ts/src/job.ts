/// <reference path="../types/globals.d.ts" preserve="true" />
// trailbase-wasm/job: scheduled jobs. trail's scheduler runs each job on one worker at the times
// its cron schedule names, through the component's `runJob(name)`.

/** A job's body; its promise settling ends the run (a rejection marks the run failed). */
export type JobHandlerFn = () => void | Promise<void>;
/** The reference SDK's name for JobHandlerFn. */
export type JobHandlerType = JobHandlerFn;

/** What `defineConfig({ jobHandlers })` takes: a JobHandler, or any object of this shape. */
export interface JobHandlerInterface {
    name: string;
    /** The cron schedule, as for `new JobHandler(name, spec, handler)`. */
    spec: string;
    handler: JobHandlerFn;
}

const SHORTHANDS = new Set([
    "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly", "@minutely",
]);

/** A named job and its schedule, a cron expression. */
export class JobHandler implements JobHandlerInterface {
    readonly name: string;
    /**
     * A cron expression: 5 fields (minute hour day-of-month month day-of-week), 6 with seconds
     * first, 7 with seconds first and a year last (the reference's form), or a shorthand such
     * as `@hourly`.
     */
    readonly schedule: string;
    readonly handler: JobHandlerFn;

    /** A job on the cron schedule `schedule` (5, 6 or 7 fields, or `@hourly`-style). */
    constructor(name: string, schedule: string, handler: JobHandlerFn) {
        if (typeof name !== "string" || name.length === 0 || /[\s\u0000-\u001f]/.test(name)) {
            throw new TypeError(`job name must be a non-empty string without spaces: ${JSON.stringify(name)}`);
        }
        if (typeof handler !== "function") throw new TypeError(`the handler of job ${name} is not a function`);
        checkCron(name, schedule);
        this.name = name;
        this.schedule = schedule;
        this.handler = handler;
    }

    /** The schedule, under the reference SDK's name. */
    get spec(): string {
        return this.schedule;
    }

    /** Every minute (`* * * * *`). */
    static minutely(name: string, handler: JobHandlerFn): JobHandler {
        return new JobHandler(name, "* * * * *", handler);
    }
    /** Every hour on the hour (`0 * * * *`). */
    static hourly(name: string, handler: JobHandlerFn): JobHandler {
        return new JobHandler(name, "0 * * * *", handler);
    }
    /** Every day at midnight in `jobs.time_zone` (UTC by default; `0 0 * * *`). */
    static daily(name: string, handler: JobHandlerFn): JobHandler {
        return new JobHandler(name, "0 0 * * *", handler);
    }
    /** Every Sunday at midnight in `jobs.time_zone` (UTC by default; `0 0 * * 0`). */
    static weekly(name: string, handler: JobHandlerFn): JobHandler {
        return new JobHandler(name, "0 0 * * 0", handler);
    }
    /** On a cron schedule, e.g. `"*\/5 * * * *"` or `"@daily"`. */
    static cron(name: string, schedule: string, handler: JobHandlerFn): JobHandler {
        return new JobHandler(name, schedule, handler);
    }
}

// A shape check so that a typo fails when the component loads; trail parses the fields.
function checkCron(name: string, schedule: string): void {
    if (typeof schedule === "string") {
        const s = schedule.trim();
        if (SHORTHANDS.has(s)) return;
        const fields = s.split(/\s+/);
        if (fields.length >= 5 && fields.length <= 7 && fields.every((f) => /^[0-9A-Za-z*?\/,\-#]+$/.test(f))) {
            return;
        }
    }
    throw new TypeError(`job ${name}: invalid cron schedule ${JSON.stringify(schedule)} (5, 6 or 7 fields, or @hourly-style)`);
}
