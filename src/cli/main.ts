/** Entry point of the `jitgate` binary (bin/jitgate.js imports the built copy of this file). */
import { runCli } from './program.js';

process.exitCode = await runCli(process.argv.slice(2));
