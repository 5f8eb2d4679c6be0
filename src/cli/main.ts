import { Command, CommanderError } from 'commander';
import { isEtcdsnapError, toEtcdsnapError } from '../core/errors.js';
import { VERSION } from '../core/version.js';
import { agentCommand } from './agent-command.js';
import { clusterCommand } from './cluster-command.js';
import { serverCommand } from './server-command.js';
import { loginCommand } from './login-command.js';
import { operationCommand } from './operation-command.js';
import { snapshotCommand } from './snapshot-command.js';
import { closeOpenedTargets } from './targets.js';

/** Exit codes: 0 ok, 1 failed, 2 usage error, 3 partly done (e.g. one target of two failed). */
export const EXIT = { OK: 0, FAILED: 1, USAGE: 2, PARTIAL: 3 } as const;

export function buildProgram(): Command {
  const program = new Command('etcdsnap')
    .description('Back up and restore the etcd data of Kubernetes clusters.')
    .version(VERSION);
  program.addCommand(snapshotCommand());
  program.addCommand(clusterCommand());
  program.addCommand(operationCommand());
  program.addCommand(loginCommand());
  program.addCommand(serverCommand());
  program.addCommand(agentCommand());
  // addCommand() does not pass settings down: every command throws instead of exiting.
  const configure = (cmd: Command): void => {
    cmd.exitOverride().showHelpAfterError('(run with --help for usage)');
    cmd.commands.forEach(configure);
  };
  configure(program);
  return program;
}

/** Entry point: parses argv, runs the command, prints one coded line on failure. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and --version end with a "success" CommanderError; every other one is a usage error
      return err.exitCode === 0 || err.code === 'commander.helpDisplayed' || err.code === 'commander.version' ? EXIT.OK : EXIT.USAGE;
    }
    const e = toEtcdsnapError(err);
    process.stderr.write(`error: ${e.toLine()}\n`);
    if (!isEtcdsnapError(err) && process.env.ETCDSNAP_DEBUG) process.stderr.write(`${(err as Error)?.stack ?? ''}\n`);
    return e.code === 'INVALID_ARGUMENT' || e.code === 'INVALID_NAME' || e.code === 'INVALID_CONFIG' ? EXIT.USAGE : EXIT.FAILED;
  } finally {
    closeOpenedTargets();
  }
}
