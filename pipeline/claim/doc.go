// Package claim lets processes on several machines share out the tasks of
// a run directory on a shared filesystem, each task done once.
//
// A task is claimed by creating its claim file exclusively (O_EXCL): of
// two processes that try at once, one gets it. The file names the owner,
// its host and process ID, when it was claimed and its heartbeat, which
// the owner refreshes (Claim.Keep) by replacing the file atomically. A
// claim whose heartbeat is older than the directory's timeout is stale:
// its owner died or lost the filesystem, and another process takes the
// task over by creating the claim of the next generation, exclusively
// again, so that two processes cannot both take over one claim. An owner
// that finds a newer generation than its own has lost the task and
// stops. A finished task gets a done file, written once; a task is never
// claimed again once it has one. A failure is recorded in the task's err
// file with its error, and the claim is released, as it is when its owner
// is interrupted, so that the next process can take the task at once.
//
// Files, in the claim directory, for a task T:
//
//	T.claim-N   Record: the claim of generation N (1, 2, …), JSON
//	T.done      Done: written once, when T finished
//	T.err       Failure: the latest failure of T
//
// Staleness is judged by the clock of the process that reads a claim
// against the heartbeat written by the clock of its owner: the hosts'
// clocks must agree to well within the timeout (as NTP keeps them).
package claim
