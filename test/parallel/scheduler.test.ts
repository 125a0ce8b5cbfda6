// Placement from the schedulers' variables (torchrun/Kubernetes, SLURM, Open MPI, patho launch):
// which wins, the values each gives, SLURM's compressed host lists expanded by hand-worked
// examples, and one error naming the variables for each inconsistency.
import t from 'tap';
import { expandHostList, expandTasksPerNode, firstHost, MAX_HOSTS } from '../../lib/parallel/hostlist';
import { cudaDeviceForPlacement, describePlacement, detectPlacement, MPI_DEFAULT_PORT, slurmPort } from '../../lib/parallel/scheduler';

t.test('SLURM host lists', async (t) => {
  t.same(expandHostList('gpu[01-04,07]'), ['gpu01', 'gpu02', 'gpu03', 'gpu04', 'gpu07'], 'zero padding kept');
  t.same(expandHostList('login1,gpu[8-10],gpu[010-011]'), ['login1', 'gpu8', 'gpu9', 'gpu10', 'gpu010', 'gpu011']);
  t.same(expandHostList('rack[1-2]-n[1-2]'), ['rack1-n1', 'rack1-n2', 'rack2-n1', 'rack2-n2'], 'groups multiply, left first');
  t.same(expandHostList('n[3]x,a-b.example.org'), ['n3x', 'a-b.example.org'], 'dashes outside brackets are part of the name');
  t.same(expandHostList(' node7 '), ['node7']);
  t.equal(firstHost('gpu[07-99,01],cpu1'), 'gpu07', 'the first host, without expanding the list');
  t.equal(firstHost('rack[2-3]-n[10-11]'), 'rack2-n10');
  t.equal(firstHost('login1,gpu[1-4]'), 'login1');
  t.throws(() => expandHostList('gpu[1-4', 'SLURM_JOB_NODELIST'), {
    code: 'ERR_PATHO_LAUNCH',
    message:
      "Expected a SLURM host list (e.g. 'gpu[01-04,07],login1') for SLURM_JOB_NODELIST but received 'gpu[1-4': a '[' is never closed",
  });
  t.throws(() => expandHostList('gpu[4-1]'), { message: /range 4-1 runs backwards/ });
  t.throws(() => expandHostList('gpu[a-b]'), { message: /'\[a-b\]' holds 'a-b', not a number or a range a-b/ });
  t.throws(() => expandHostList('gpu[[1]]'), { message: /brackets cannot nest/ });
  t.throws(() => expandHostList('gpu1]'), { message: /'\]' at position 4 closes nothing/ });
  t.throws(() => expandHostList(','), { message: /it names no host/ });
  t.throws(() => expandHostList(`n[1-${MAX_HOSTS + 1}]`), { message: /names more than 1000000 hosts/ });
  t.throws(() => expandHostList('a[1-1000]-b[1-1001]'), { message: /it names more than 1000000 hosts/ }, 'products are capped too');
  t.same(expandTasksPerNode('2(x3),1'), [2, 2, 2, 1]);
  t.same(expandTasksPerNode('4'), [4]);
  t.throws(() => expandTasksPerNode('2(3)'), {
    message: "Expected tasks per node such as '2(x3),1' for SLURM_STEP_TASKS_PER_NODE but received '2(3)'",
  });
});

const slurm = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
  SLURM_STEP_ID: '0',
  SLURM_PROCID: '5',
  SLURM_NTASKS: '8',
  SLURM_STEP_NUM_TASKS: '8',
  SLURM_LOCALID: '1',
  SLURM_NODEID: '2',
  SLURM_STEP_TASKS_PER_NODE: '2(x4)',
  SLURM_STEP_NODELIST: 'gpu[03-06]',
  SLURM_JOB_NODELIST: 'gpu[01-08]',
  SLURM_JOB_ID: '123456',
  ...extra,
});

t.test('which starter placed the process', async (t) => {
  t.match(
    detectPlacement({}),
    { source: 'patho', rank: 0, worldSize: 1, localRank: 0, masterAddr: '127.0.0.1', masterPort: 0 },
    'nothing set: one process',
  );
  t.match(
    detectPlacement({
      RANK: '3',
      WORLD_SIZE: '4',
      LOCAL_RANK: '1',
      LOCAL_WORLD_SIZE: '2',
      MASTER_ADDR: 'trainer-master-0',
      MASTER_PORT: '23456',
    }),
    { source: 'torchrun', rank: 3, worldSize: 4, localRank: 1, localWorldSize: 2, masterAddr: 'trainer-master-0', masterPort: 23456 },
  );
  // SLURM: 8 tasks on 4 nodes; the step's first node serves the rendezvous; port from the job id
  t.match(detectPlacement(slurm()), {
    source: 'slurm',
    rank: 5,
    worldSize: 8,
    localRank: 1,
    localWorldSize: 2,
    masterAddr: 'gpu03',
    masterPort: 15000 + (123456 % 17000),
  });
  t.equal(slurmPort(123456), 15000 + 4456);
  t.match(
    detectPlacement(slurm({ SLURM_STEP_NODELIST: '', PATHO_MASTER_PORT: '29400' })),
    { masterAddr: 'gpu01', masterPort: 29400 },
    'the job list when the step has none; PATHO_MASTER_PORT wins',
  );
  t.match(detectPlacement(slurm({ PATHO_MASTER_ADDR: '10.1.2.3' })), { masterAddr: '10.1.2.3' });
  // a batch script (no srun step) is one process, not rank 0 of SLURM_NTASKS
  t.match(detectPlacement({ SLURM_PROCID: '0', SLURM_NTASKS: '8', SLURM_JOB_ID: '7', SLURM_JOB_NODELIST: 'n[1-2]' }), {
    source: 'patho',
    worldSize: 1,
  });
  t.match(
    detectPlacement({
      OMPI_COMM_WORLD_RANK: '2',
      OMPI_COMM_WORLD_SIZE: '4',
      OMPI_COMM_WORLD_LOCAL_RANK: '0',
      OMPI_COMM_WORLD_LOCAL_SIZE: '2',
      PATHO_MASTER_ADDR: 'node0',
    }),
    { source: 'mpi', rank: 2, worldSize: 4, localRank: 0, localWorldSize: 2, masterAddr: 'node0', masterPort: MPI_DEFAULT_PORT },
  );
  t.match(
    detectPlacement({
      OMPI_COMM_WORLD_RANK: '1',
      OMPI_COMM_WORLD_SIZE: '2',
      OMPI_COMM_WORLD_LOCAL_RANK: '1',
      OMPI_COMM_WORLD_LOCAL_SIZE: '2',
      PATHO_MASTER_PORT: '4000',
    }),
    { source: 'mpi', masterAddr: '127.0.0.1', masterPort: 4000 },
    'mpirun on one host needs no master address',
  );
  // precedence: patho launch inside an srun step or a torchrun pod sets PATHO_*; torchrun before SLURM before MPI
  t.match(
    detectPlacement({ ...slurm(), RANK: '1', WORLD_SIZE: '2', MASTER_ADDR: 'm', MASTER_PORT: '1', PATHO_RANK: '0', PATHO_WORLD_SIZE: '1' }),
    { source: 'patho' },
  );
  t.match(detectPlacement({ ...slurm(), RANK: '1', WORLD_SIZE: '2', MASTER_ADDR: 'm', MASTER_PORT: '1' }), { source: 'torchrun' });
  t.match(detectPlacement({ ...slurm(), OMPI_COMM_WORLD_RANK: '1', OMPI_COMM_WORLD_SIZE: '2' }), { source: 'slurm' });
  t.match(detectPlacement({ RANK: '1' }), { source: 'patho', worldSize: 1 }, 'RANK alone is not torchrun');
  t.match(
    detectPlacement({ RANK: '3', WORLD_SIZE: '4', MASTER_ADDR: 'patho-train-master-0', MASTER_PORT: '23456' }),
    { source: 'torchrun', rank: 3, localRank: 0 },
    "a PyTorchJob pod's one process (the operator sets no LOCAL_RANK) is local rank 0",
  );
});

t.test('the log line says which variables were used', async (t) => {
  t.equal(
    describePlacement(detectPlacement(slurm())),
    'patho: rank 5 of 8 (local rank 1) from SLURM (SLURM_PROCID, SLURM_STEP_NUM_TASKS, SLURM_LOCALID); master gpu03:19456 (first host of SLURM_STEP_NODELIST; port: derived from SLURM_JOB_ID)',
  );
  t.equal(
    describePlacement(detectPlacement({ RANK: '0', WORLD_SIZE: '2', MASTER_ADDR: 'a', MASTER_PORT: '9' })),
    'patho: rank 0 of 2 (local rank 0) from torchrun/Kubernetes (RANK, WORLD_SIZE, LOCAL_RANK); master a:9 (MASTER_ADDR; port: MASTER_PORT)',
  );
});

t.test('inconsistent values: one error naming the variables', async (t) => {
  const e = (env: NodeJS.ProcessEnv, message: string | RegExp): void => {
    t.throws(() => detectPlacement(env), { code: 'ERR_PATHO_LAUNCH', message });
  };
  e(
    { RANK: '4', WORLD_SIZE: '4', MASTER_ADDR: 'a', MASTER_PORT: '1' },
    "Expected RANK below WORLD_SIZE (4) but received '4' (torchrun/Kubernetes)",
  );
  e(
    { RANK: '1', WORLD_SIZE: '4', LOCAL_RANK: '2', LOCAL_WORLD_SIZE: '2', MASTER_ADDR: 'a', MASTER_PORT: '1' },
    "Expected LOCAL_RANK below the 2 ranks on this node but received '2' (torchrun/Kubernetes)",
  );
  e(
    { RANK: '1', WORLD_SIZE: '2', MASTER_PORT: '1' },
    'Expected MASTER_ADDR to be set (the host of rank 0, for 2 ranks) but it is not set; torchrun/Kubernetes variables were found',
  );
  e({ RANK: '1', WORLD_SIZE: '2', MASTER_ADDR: 'a' }, /^Expected MASTER_PORT to be set/);
  e({ RANK: 'one', WORLD_SIZE: '2' }, "Expected an integer >= 0 for RANK but received 'one'");
  e(
    { RANK: '0', WORLD_SIZE: '2', MASTER_ADDR: 'a', MASTER_PORT: '70000' },
    "Expected an integer 0..65535 for MASTER_PORT but received '70000'",
  );
  e(slurm({ SLURM_PROCID: '8' }), "Expected SLURM_PROCID below SLURM_STEP_NUM_TASKS (8) but received '8' (SLURM)");
  e(slurm({ SLURM_LOCALID: '2' }), "Expected SLURM_LOCALID below the 2 ranks on this node but received '2' (SLURM)");
  e(slurm({ SLURM_NODEID: '4' }), "Expected SLURM_NODEID below the 4 nodes of SLURM_STEP_TASKS_PER_NODE ('2(x4)') but received '4'");
  e(
    slurm({ SLURM_STEP_TASKS_PER_NODE: '3(x4)' }),
    "Expected SLURM_STEP_TASKS_PER_NODE ('3(x4)', 12 tasks) to add up to SLURM_STEP_NUM_TASKS (8)",
  );
  e(
    slurm({ SLURM_STEP_NODELIST: 'gpu[03-', SLURM_JOB_NODELIST: '' }),
    /for SLURM_STEP_NODELIST but received 'gpu\[03-': a '\[' is never closed/,
  );
  e(
    slurm({ SLURM_STEP_NODELIST: '', SLURM_JOB_NODELIST: '' }),
    /^Expected SLURM_STEP_NODELIST to be set \(its first host serves the rendezvous; or set PATHO_MASTER_ADDR\)/,
  );
  e(slurm({ SLURM_JOB_ID: '' }), /^Expected PATHO_MASTER_PORT to be set \(or SLURM_JOB_ID, to agree on a port for 8 ranks\)/);
  e(
    { OMPI_COMM_WORLD_RANK: '0', OMPI_COMM_WORLD_SIZE: '4', OMPI_COMM_WORLD_LOCAL_SIZE: '2' },
    /^Expected PATHO_MASTER_ADDR to be set \(the host of rank 0: mpirun does not say which it is/,
  );
  e(
    { OMPI_COMM_WORLD_RANK: '3', OMPI_COMM_WORLD_SIZE: '2', PATHO_MASTER_ADDR: 'a' },
    "Expected OMPI_COMM_WORLD_RANK below OMPI_COMM_WORLD_SIZE (2) but received '3' (Open MPI)",
  );
  e(
    { PATHO_RANK: '1', PATHO_WORLD_SIZE: '2', PATHO_MASTER_PORT: '0' },
    /^Expected a master port for a job of 2 ranks but received 0 from PATHO_MASTER_PORT/,
  );
});

t.test('a rank GPU: cuda:<local rank>, or the one GPU the scheduler gave the task', async (t) => {
  const p = detectPlacement(slurm());
  t.equal(cudaDeviceForPlacement(p, 4, {}), 'cuda:1');
  t.equal(
    cudaDeviceForPlacement(p, 1, { CUDA_VISIBLE_DEVICES: '5' }),
    'cuda:0',
    'srun --gpus-per-task=1: each task sees its own GPU as device 0',
  );
  t.equal(cudaDeviceForPlacement(p, 0, {}), 'cuda:1', 'no device found: the CUDA layer reports what is missing');
  t.throws(() => cudaDeviceForPlacement(p, 1, {}), {
    code: 'ERR_PATHO_LAUNCH',
    message:
      "Expected SLURM_LOCALID below the 1 CUDA device of this machine but received '1' (SLURM): start at most 1 rank per node, or give each task one GPU through CUDA_VISIBLE_DEVICES",
  });
});
