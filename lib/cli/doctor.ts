// `patho doctor`: prints lib/doctor.ts's report (text or --json); exits 1 when the addon cannot load,
// after saying what was tried and how to fix it.
import { doctor, formatDoctor } from '../doctor';
import { parseFlags } from './args';
import { DOCTOR } from './flags';

export async function doctorCommand(argv: string[]): Promise<number> {
  const f = parseFlags(argv, DOCTOR);
  const report = doctor();
  process.stdout.write(f.bool('json') ? JSON.stringify(report) + '\n' : formatDoctor(report) + '\n');
  return report.addon.loaded ? 0 : 1;
}
