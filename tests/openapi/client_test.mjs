// Generates a JavaScript client from openapi/ember.yaml with
// swagger-typescript-api and uses it, over the Unix socket, to configure and
// boot the test guest, read its state back and shut it down.
//   node client_test.mjs SPEC EMBER_BINARY GUEST_ELF
// Exits 77 (skipped) when /dev/kvm is absent.
import { generateApi } from 'swagger-typescript-api';
import { spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import assert from 'node:assert/strict';

const [specPath, emberBinary, guest] = process.argv.slice(2);
try {
  accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
} catch {
  console.log('SKIPPED: /dev/kvm is absent; the generated-client test boots a guest');
  process.exit(77);
}

// Generated inside this folder so that its imports resolve to node_modules here.
const work = mkdtempSync(path.join(path.dirname(new URL(import.meta.url).pathname), '.generated-'));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
let ember;
let socketDir;
try {
  await generateApi({
    input: path.resolve(specPath),
    output: work,
    fileName: 'ember_client.js',
    httpClientType: 'axios',
    toJS: true,
    silent: true,
  });
  const { Api } = await import(pathToFileURL(path.join(work, 'ember_client.js')).href);
  console.log('generated the client from the spec');

  socketDir = mkdtempSync('/tmp/ember-client-');  // short: sun_path holds 108 bytes
  const socket = path.join(socketDir, 'api.sock');
  const stdoutPath = path.join(work, 'stdout');
  ember = spawn(emberBinary, ['--api-sock', socket], {
    stdio: ['ignore', openSync(stdoutPath, 'w'), openSync(path.join(work, 'stderr'), 'w')],
  });
  const exited = new Promise((resolve) => ember.on('exit', (code) => resolve(code)));
  for (let i = 0; ; i++) {
    const up = await new Promise((resolve) => {
      const probe = net.connect(socket, () => { probe.end(); resolve(true); });
      probe.on('error', () => resolve(false));
    });
    if (up) break;
    assert.ok(i < 500, 'ember never opened its socket');
    await sleep(10);
  }
  const waitForOutput = async (text) => {
    for (let i = 0; i < 2000; i++) {
      if (readFileSync(stdoutPath, 'utf8').includes(text)) return;
      await sleep(10);
    }
    assert.fail(`the guest never printed "${text}"`);
  };

  const api = new Api({ baseURL: 'http://localhost', socketPath: socket });
  assert.equal((await api.describeInstance()).data.state, 'Not started');
  await api.bootSource.putGuestBootSource({
    kernel_image_path: guest,
    boot_args: 'console=ttyS0 ember.tests=cpuid,mptable,blk,ctrlaltdel',
  });
  const drivePath = path.join(work, 'root.img');
  writeFileSync(drivePath, Buffer.alloc(64 * 1024, 0x5a));
  await api.drives.putGuestDriveById('rootfs', {
    drive_id: 'rootfs', path_on_host: drivePath, is_root_device: true, is_read_only: false,
  });
  await api.machineConfig.putMachineConfiguration({ vcpu_count: 2, mem_size_mib: 128 });
  await api.machineConfig.patchMachineConfiguration({ mem_size_mib: 256 });
  const machine = (await api.machineConfig.getMachineConfiguration()).data;
  assert.equal(machine.vcpu_count, 2);
  assert.equal(machine.mem_size_mib, 256);

  // Errors come back as 400 with the fault message the spec describes.
  await assert.rejects(
    api.machineConfig.putMachineConfiguration({ vcpu_count: 0, mem_size_mib: 128 }),
    (error) => error.response.status === 400 &&
      error.response.data.fault_message === 'vcpu_count: must be between 1 and 32, got 0');

  await api.actions.createSyncAction({ action_type: 'InstanceStart' });
  await waitForOutput('ember-guest: waiting for ctrl-alt-del');
  assert.equal((await api.describeInstance()).data.state, 'Running');
  const config = (await api.vm.getExportVmConfig()).data;
  assert.equal(config['boot-source'].kernel_image_path, guest);
  assert.equal(config['machine-config'].mem_size_mib, 256);
  assert.match(readFileSync(stdoutPath, 'utf8'), /ember-guest: mptable cpus=2 /);
  assert.equal(config.drives[0].path_on_host, drivePath);
  assert.match(readFileSync(stdoutPath, 'utf8'), /ember-guest: blk drives=1 ok\n/);

  await api.vm.patchVm({ state: 'Paused' });
  assert.equal((await api.describeInstance()).data.state, 'Paused');
  await api.vm.patchVm({ state: 'Resumed' });
  await api.actions.createSyncAction({ action_type: 'SendCtrlAltDel' });
  assert.equal(await exited, 0, 'ember exits 0 after the guest resets');
  assert.match(readFileSync(stdoutPath, 'utf8'), /ctrl-alt-del received\nember-guest: done\n/);
  ember = undefined;
  console.log('client test: the generated client configured (with a drive), booted, paused, resumed and stopped the guest');
} catch (error) {
  // Show what ember said: the failure is often explained there.
  try {
    console.error('ember stderr:\n' + readFileSync(path.join(work, 'stderr'), 'utf8'));
  } catch {}
  throw error;
} finally {
  if (ember) ember.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
  if (socketDir) rmSync(socketDir, { recursive: true, force: true });
}
