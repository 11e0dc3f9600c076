/** Entry point of the `jitgate` binary (bin/jitgate.js imports the built copy of this file). */
import { endQuietlyOnBrokenPipe } from './broken-pipe.js';
import { runCli } from './program.js';

endQuietlyOnBrokenPipe(process.stdout, (code) => process.exit(code));
process.exitCode = await runCli(process.argv.slice(2));
