// Shared by the host self-test's files: one line per check, counted for the summary.
#pragma once

void check(bool ok, const char* what, double got, double want);
bool close(double got, double want, double rtol, double atol);
// selftest_plugin.cc: the plugin's host-side logic (driver verdicts, batch splits, pooling ties,
// batch-norm statistics, the communicator's abort guard).
void pluginChecks();
