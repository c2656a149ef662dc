import { describeApiError } from './api-error.js';
import { systemClock, type Clock } from './clock.js';
import { defaultSecretRegistry, Redactor, type SecretRegistry } from './redact.js';

// One JSON object per line: {ts, level, logger, msg, ...fields}. Every record — message and
// fields — passes through the redactor before it is serialised.

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Readonly<Record<string, unknown>>;

const SEVERITY: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const RESERVED = new Set(['ts', 'level', 'logger', 'msg']);

export interface LogSink {
  write(line: string): void;
}

export const stdoutSink: LogSink = {
  write(line) {
    process.stdout.write(`${line}\n`);
  },
};

/** Keeps every line in memory; for tests that assert on what was logged. */
export class MemorySink implements LogSink {
  readonly lines: string[] = [];

  write(line: string): void {
    this.lines.push(line);
  }

  records(): Array<Record<string, unknown>> {
    return this.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  text(): string {
    return this.lines.join('\n');
  }
}

export function parseLogLevel(value: string | undefined, fallback: LogLevel = 'info'): LogLevel {
  const v = value?.trim().toLowerCase();
  return v === 'debug' || v === 'info' || v === 'warn' || v === 'error' ? v : fallback;
}

export interface LoggerOptions {
  /** Dotted logger name, e.g. `controller.encryptedservice`. */
  readonly name?: string;
  readonly level?: LogLevel;
  readonly sink?: LogSink;
  /** Registry of known secret values to scrub. Defaults to the process-wide one. */
  readonly secrets?: SecretRegistry;
  readonly clock?: Clock;
  /** Fields bound to every record of this logger and its children. */
  readonly fields?: LogFields;
}

interface Shared {
  readonly level: LogLevel;
  readonly sink: LogSink;
  readonly redactor: Redactor;
  readonly clock: Clock;
}

/**
 * Error values anywhere in the fields are logged as {name, code, reason, message[, stack]}:
 * API errors by their parsed Status only (see describeApiError), other errors with the stack
 * frames but without the first stack line, which repeats the unredacted message.
 */
function errorFields(redactorRef: { current?: Redactor }): (err: Error) => Record<string, unknown> {
  return (err) => {
    const { code, reason, message } = describeApiError(err, redactorRef.current);
    const out: Record<string, unknown> = { name: err.name, reason, message };
    if (code !== undefined) out['code'] = code;
    else if (typeof err.stack === 'string') {
      out['stack'] = err.stack.split('\n').filter((l) => /^\s+at /.test(l)).slice(0, 12).map((l) => l.trim());
    }
    return out;
  };
}

export class Logger {
  private constructor(
    readonly name: string,
    private readonly shared: Shared,
    private readonly bound: LogFields,
  ) {}

  static create(options: LoggerOptions = {}): Logger {
    const ref: { current?: Redactor } = {};
    const redactor = new Redactor(options.secrets ?? defaultSecretRegistry, { describeError: errorFields(ref) });
    ref.current = redactor;
    return new Logger(
      options.name ?? 'lockstep',
      {
        level: options.level ?? 'info',
        sink: options.sink ?? stdoutSink,
        redactor,
        clock: options.clock ?? systemClock,
      },
      options.fields ?? {},
    );
  }

  /** A logger named `<this>.<name>` (or the same name) with extra bound fields. */
  child(name?: string, fields: LogFields = {}): Logger {
    const childName = name ? `${this.name}.${name}` : this.name;
    return new Logger(childName, this.shared, { ...this.bound, ...fields });
  }

  enabled(level: LogLevel): boolean {
    return SEVERITY[level] >= SEVERITY[this.shared.level];
  }

  debug(msg: string, fields?: LogFields): void {
    this.log('debug', msg, fields);
  }

  info(msg: string, fields?: LogFields): void {
    this.log('info', msg, fields);
  }

  warn(msg: string, fields?: LogFields): void {
    this.log('warn', msg, fields);
  }

  error(msg: string, fields?: LogFields): void {
    this.log('error', msg, fields);
  }

  private log(level: LogLevel, msg: string, fields: LogFields | undefined): void {
    if (!this.enabled(level)) return;
    const { redactor, sink, clock } = this.shared;
    const merged = fields ? { ...this.bound, ...fields } : this.bound;
    const clean = redactor.redact(merged) as Record<string, unknown>;
    const record: Record<string, unknown> = {
      ts: new Date(clock.now()).toISOString(),
      level,
      logger: this.name,
      msg: redactor.redactString(msg),
    };
    for (const [k, v] of Object.entries(clean)) record[RESERVED.has(k) ? `_${k}` : k] = v;
    try {
      sink.write(JSON.stringify(record));
    } catch {
      // A broken stdout must not take a reconcile down with it.
    }
  }
}

export function createLogger(options: LoggerOptions = {}): Logger {
  return Logger.create(options);
}
