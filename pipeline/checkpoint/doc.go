// Package checkpoint saves and loads training checkpoints: the model's
// parameters and buffers, the optimiser's state and what a run needs to
// resume exactly where it stopped.
//
// A checkpoint is a directory named ckpt-step-%08d (DirName) holding
// two files:
//
//   - manifest.json: a JSON object with format_version (Version),
//     step, epoch, config (the training config, as the caller gave it), dataset_id,
//     pretext (the model's name), rng (named random-source states, such as the
//     MarshalBinary of an nn.NewRNG *rand.PCG, each base64), metrics (a few
//     numbers such as val_loss, for choosing the best checkpoint), tensors
//     (each tensor's name, shape and the hex SHA-256 of its values as raw
//     little-endian float32 bytes, in file order), tensors_bytes (the size of
//     tensors.zst) and tensors_sha256 (the hex SHA-256 of tensors.zst);
//   - tensors.zst: the zstd compression of an nn.WriteTensors container of
//     the model's parameters, its buffers and the optimiser's state.
//
// Tensor names in the container and the manifest carry a prefix that says
// which group they belong to, so names never collide across groups:
// "model/" for parameters (State.Params), "buffer/" for buffers
// such as batch-norm running statistics (Buffers), "optim/" for optimiser
// state (Optim). For example "model/encoder.block1.conv.weight",
// "buffer/encoder.block1.bn.running_mean", "optim/encoder.block1.conv.weight.momentum".
//
// Save writes into a temporary directory .ckpt-step-%08d.partial-*
// beside the destination, syncs every file and the directory, then renames
// it into place: a checkpoint directory either holds a complete checkpoint
// or does not exist. List ignores temporary directories.
package checkpoint
