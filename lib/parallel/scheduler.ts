// Where this process sits in a job: rank, world size, local rank and master, read from the
// variables of whoever started it: `patho launch` (PATHO_*), else torchrun / Kubernetes operators
// (RANK, WORLD_SIZE, ...), else a SLURM step (srun), else Open MPI (mpirun). One error per
// inconsistency, naming the variables; `describePlacement` is the one log line saying which was used.
import { PathoError } from '../errors';
import { expandTasksPerNode, firstHost } from './hostlist';

export type PlacementSource = 'patho' | 'torchrun' | 'slurm' | 'mpi';

/** The variable (or rule) each value came from, for messages. */
export interface PlacementVars {
  rank: string;
  worldSize: string;
  localRank: string;
  masterAddr: string;
  masterPort: string;
}

export interface Placement {
  source: PlacementSource;
  rank: number;
  worldSize: number;
  /** rank within this node (picks the GPU) */
  localRank: number;
  /** ranks on this node, when the starter says */
  localWorldSize: number | null;
  masterAddr: string;
  /** 0: let the system pick (a single rank only) */
  masterPort: number;
  vars: PlacementVars;
}

const SOURCE_NAMES: Record<PlacementSource, string> = {
  patho: 'patho launch',
  torchrun: 'torchrun/Kubernetes',
  slurm: 'SLURM',
  mpi: 'Open MPI',
};

/** The port a SLURM job's ranks agree on without talking: 15000 + job id mod 17000 (below Linux's ephemeral ports at 32768). */
export function slurmPort(jobId: number): number {
  return 15000 + (jobId % 17000);
}

/** The default port of mpirun jobs without PATHO_MASTER_PORT (torchrun's default). */
export const MPI_DEFAULT_PORT = 29500;

function set(env: NodeJS.ProcessEnv, name: string): boolean {
  const v = env[name];
  return v !== undefined && v !== '';
}

function fail(message: string): PathoError {
  return new PathoError('ERR_PATHO_LAUNCH', message);
}

function int(env: NodeJS.ProcessEnv, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name] ?? '';
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(v) || v < min || v > max) {
    throw fail(`Expected an integer ${max < Number.MAX_SAFE_INTEGER ? `${min}..${max}` : `>= ${min}`} for ${name} but received '${raw}'`);
  }
  return v;
}

function optInt(env: NodeJS.ProcessEnv, name: string, min: number): number | null {
  return set(env, name) ? int(env, name, min) : null;
}

function port(env: NodeJS.ProcessEnv, name: string): number {
  return int(env, name, 0, 65535);
}

function missing(name: string, source: PlacementSource, why: string): PathoError {
  return fail(`Expected ${name} to be set (${why}) but it is not set; ${SOURCE_NAMES[source]} variables were found`);
}

// The checks every source shares: rank below world, local rank below local world, a port for several ranks.
function check(p: Placement): Placement {
  const v = p.vars;
  if (p.rank >= p.worldSize) {
    throw fail(`Expected ${v.rank} below ${v.worldSize} (${p.worldSize}) but received '${p.rank}' (${SOURCE_NAMES[p.source]})`);
  }
  if (p.localWorldSize !== null && p.localRank >= p.localWorldSize) {
    throw fail(
      `Expected ${v.localRank} below the ${p.localWorldSize} ranks on this node but received '${p.localRank}' (${SOURCE_NAMES[p.source]})`,
    );
  }
  if (p.worldSize > 1 && p.masterPort === 0) {
    throw fail(
      `Expected a master port for a job of ${p.worldSize} ranks but received 0 from ${v.masterPort} (only a single rank may let the system pick one)`,
    );
  }
  return p;
}

function fromPatho(env: NodeJS.ProcessEnv): Placement {
  const worldSize = set(env, 'PATHO_WORLD_SIZE') ? int(env, 'PATHO_WORLD_SIZE', 1) : 1;
  const rank = set(env, 'PATHO_RANK') ? int(env, 'PATHO_RANK', 0) : 0;
  if (rank >= worldSize) throw fail(`Expected PATHO_RANK below PATHO_WORLD_SIZE (${worldSize}) but received '${rank}'`);
  if (worldSize > 1 && !set(env, 'PATHO_MASTER_PORT')) {
    throw fail(
      `Expected PATHO_MASTER_PORT to be set (a port for the ${worldSize} ranks to meet at) but it is not set; start workers with \`patho launch\``,
    );
  }
  return check({
    source: 'patho',
    rank,
    worldSize,
    localRank: set(env, 'PATHO_LOCAL_RANK') ? int(env, 'PATHO_LOCAL_RANK', 0) : rank,
    localWorldSize: optInt(env, 'PATHO_LOCAL_WORLD_SIZE', 1),
    masterAddr: env.PATHO_MASTER_ADDR || '127.0.0.1',
    masterPort: set(env, 'PATHO_MASTER_PORT') ? port(env, 'PATHO_MASTER_PORT') : 0,
    vars: {
      rank: 'PATHO_RANK',
      worldSize: 'PATHO_WORLD_SIZE',
      localRank: 'PATHO_LOCAL_RANK',
      masterAddr: 'PATHO_MASTER_ADDR',
      masterPort: 'PATHO_MASTER_PORT',
    },
  });
}

function fromTorchrun(env: NodeJS.ProcessEnv): Placement {
  const worldSize = int(env, 'WORLD_SIZE', 1);
  const rank = int(env, 'RANK', 0);
  if (worldSize > 1 && !set(env, 'MASTER_ADDR')) throw missing('MASTER_ADDR', 'torchrun', `the host of rank 0, for ${worldSize} ranks`);
  if (worldSize > 1 && !set(env, 'MASTER_PORT')) throw missing('MASTER_PORT', 'torchrun', `the port of rank 0, for ${worldSize} ranks`);
  return check({
    source: 'torchrun',
    rank,
    worldSize,
    // torchrun always sets LOCAL_RANK; a PyTorchJob pod without torchrun runs one process: local rank 0
    localRank: set(env, 'LOCAL_RANK') ? int(env, 'LOCAL_RANK', 0) : 0,
    localWorldSize: optInt(env, 'LOCAL_WORLD_SIZE', 1),
    masterAddr: env.MASTER_ADDR || '127.0.0.1',
    masterPort: set(env, 'MASTER_PORT') ? port(env, 'MASTER_PORT') : 0,
    vars: { rank: 'RANK', worldSize: 'WORLD_SIZE', localRank: 'LOCAL_RANK', masterAddr: 'MASTER_ADDR', masterPort: 'MASTER_PORT' },
  });
}

function fromSlurm(env: NodeJS.ProcessEnv): Placement {
  const wsVar = set(env, 'SLURM_STEP_NUM_TASKS') ? 'SLURM_STEP_NUM_TASKS' : 'SLURM_NTASKS';
  if (!set(env, wsVar)) throw missing('SLURM_NTASKS', 'slurm', 'the number of tasks of the step');
  const worldSize = int(env, wsVar, 1);
  const rank = int(env, 'SLURM_PROCID', 0);
  const localRank = set(env, 'SLURM_LOCALID') ? int(env, 'SLURM_LOCALID', 0) : 0;
  // tasks on this node: SLURM_STEP_TASKS_PER_NODE ("2(x3),1") at SLURM_NODEID
  let localWorldSize: number | null = null;
  const tpn = set(env, 'SLURM_STEP_TASKS_PER_NODE')
    ? 'SLURM_STEP_TASKS_PER_NODE'
    : set(env, 'SLURM_TASKS_PER_NODE')
      ? 'SLURM_TASKS_PER_NODE'
      : null;
  if (tpn && set(env, 'SLURM_NODEID')) {
    const perNode = expandTasksPerNode(env[tpn]!, tpn);
    const node = int(env, 'SLURM_NODEID', 0);
    if (node >= perNode.length)
      throw fail(`Expected SLURM_NODEID below the ${perNode.length} nodes of ${tpn} ('${env[tpn]}') but received '${node}'`);
    localWorldSize = perNode[node];
    const total = perNode.reduce((a, b) => a + b, 0);
    if (total !== worldSize) throw fail(`Expected ${tpn} ('${env[tpn]}', ${total} tasks) to add up to ${wsVar} (${worldSize})`);
  }
  let masterAddr: string;
  let addrVar: string;
  if (set(env, 'PATHO_MASTER_ADDR')) {
    masterAddr = env.PATHO_MASTER_ADDR!;
    addrVar = 'PATHO_MASTER_ADDR';
  } else {
    const listVar = ['SLURM_STEP_NODELIST', 'SLURM_JOB_NODELIST', 'SLURM_NODELIST'].find((n) => set(env, n));
    if (!listVar) {
      if (worldSize > 1) throw missing('SLURM_STEP_NODELIST', 'slurm', 'its first host serves the rendezvous; or set PATHO_MASTER_ADDR');
      masterAddr = '127.0.0.1';
      addrVar = 'default';
    } else {
      masterAddr = firstHost(env[listVar]!, listVar);
      addrVar = `first host of ${listVar}`;
    }
  }
  let masterPort = 0;
  let portVar = 'PATHO_MASTER_PORT';
  if (set(env, 'PATHO_MASTER_PORT')) {
    masterPort = port(env, 'PATHO_MASTER_PORT');
  } else if (set(env, 'SLURM_JOB_ID')) {
    masterPort = slurmPort(int(env, 'SLURM_JOB_ID', 0));
    portVar = 'derived from SLURM_JOB_ID';
  } else if (worldSize > 1) {
    throw missing('PATHO_MASTER_PORT', 'slurm', `or SLURM_JOB_ID, to agree on a port for ${worldSize} ranks`);
  }
  return check({
    source: 'slurm',
    rank,
    worldSize,
    localRank,
    localWorldSize,
    masterAddr,
    masterPort,
    vars: { rank: 'SLURM_PROCID', worldSize: wsVar, localRank: 'SLURM_LOCALID', masterAddr: addrVar, masterPort: portVar },
  });
}

function fromMpi(env: NodeJS.ProcessEnv): Placement {
  const worldSize = int(env, 'OMPI_COMM_WORLD_SIZE', 1);
  const rank = int(env, 'OMPI_COMM_WORLD_RANK', 0);
  const localWorldSize = optInt(env, 'OMPI_COMM_WORLD_LOCAL_SIZE', 1);
  let masterAddr = env.PATHO_MASTER_ADDR || '';
  let addrVar = 'PATHO_MASTER_ADDR';
  if (!masterAddr) {
    // every rank on this host: rank 0 is here too
    if (worldSize > 1 && localWorldSize !== worldSize) {
      throw missing(
        'PATHO_MASTER_ADDR',
        'mpi',
        `the host of rank 0: mpirun does not say which it is, e.g. mpirun -x PATHO_MASTER_ADDR=$(hostname)`,
      );
    }
    masterAddr = '127.0.0.1';
    addrVar = 'one host';
  }
  return check({
    source: 'mpi',
    rank,
    worldSize,
    localRank: set(env, 'OMPI_COMM_WORLD_LOCAL_RANK') ? int(env, 'OMPI_COMM_WORLD_LOCAL_RANK', 0) : rank,
    localWorldSize,
    masterAddr,
    masterPort: set(env, 'PATHO_MASTER_PORT') ? port(env, 'PATHO_MASTER_PORT') : worldSize > 1 ? MPI_DEFAULT_PORT : 0,
    vars: {
      rank: 'OMPI_COMM_WORLD_RANK',
      worldSize: 'OMPI_COMM_WORLD_SIZE',
      localRank: 'OMPI_COMM_WORLD_LOCAL_RANK',
      masterAddr: addrVar,
      masterPort: set(env, 'PATHO_MASTER_PORT') ? 'PATHO_MASTER_PORT' : 'default',
    },
  });
}

/**
 * This process's placement, from the first starter whose variables are set: PATHO_RANK or
 * PATHO_WORLD_SIZE; RANK and WORLD_SIZE; SLURM_PROCID inside an srun step (SLURM_STEP_ID: a batch
 * script alone is one process, not rank 0 of SLURM_NTASKS); OMPI_COMM_WORLD_RANK and _SIZE.
 * Nothing set: a single process.
 */
export function detectPlacement(env: NodeJS.ProcessEnv = process.env): Placement {
  if (set(env, 'PATHO_RANK') || set(env, 'PATHO_WORLD_SIZE')) return fromPatho(env);
  if (set(env, 'RANK') && set(env, 'WORLD_SIZE')) return fromTorchrun(env);
  if (set(env, 'SLURM_PROCID') && (set(env, 'SLURM_STEP_ID') || set(env, 'SLURM_STEPID'))) return fromSlurm(env);
  if (set(env, 'OMPI_COMM_WORLD_RANK') && set(env, 'OMPI_COMM_WORLD_SIZE')) return fromMpi(env);
  return fromPatho(env);
}

/** One line: which starter's variables placed this process, and where its master is. */
export function describePlacement(p: Placement): string {
  const v = p.vars;
  return (
    `patho: rank ${p.rank} of ${p.worldSize} (local rank ${p.localRank}) from ${SOURCE_NAMES[p.source]} ` +
    `(${v.rank}, ${v.worldSize}, ${v.localRank}); master ${p.masterAddr}:${p.masterPort} (${v.masterAddr}; port: ${v.masterPort})`
  );
}

/**
 * The GPU of a rank: cuda:<local rank>, or cuda:0 when the scheduler gave this task a single GPU
 * of its own (CUDA_VISIBLE_DEVICES names one, as srun --gpus-per-task=1 does).
 */
export function cudaDeviceForPlacement(
  p: { localRank: number; source?: PlacementSource; vars?: PlacementVars },
  deviceCount: number,
  env: NodeJS.ProcessEnv = process.env,
): string {
  // no device found at all: the CUDA layer's own error says what is missing (driver, plugin, GPU)
  if (p.localRank < deviceCount || deviceCount === 0) return `cuda:${p.localRank}`;
  const visible = (env.CUDA_VISIBLE_DEVICES ?? '').split(',').filter((s) => s.trim() !== '');
  if (deviceCount === 1 && visible.length === 1) return 'cuda:0';
  throw fail(
    `Expected ${p.vars?.localRank ?? 'the local rank'} below the ${deviceCount} CUDA device${deviceCount === 1 ? '' : 's'} of this machine ` +
      `but received '${p.localRank}' (${SOURCE_NAMES[p.source ?? 'patho']}): start at most ${deviceCount} rank${deviceCount === 1 ? '' : 's'} per node, ` +
      'or give each task one GPU through CUDA_VISIBLE_DEVICES',
  );
}
