using Conic.Distributed;
using Conic.Methods;
using static TorchSharp.torch;

namespace Conic.Training;

/// <summary>
/// Everything a checkpoint saves and restores — the method's parameters and buffers, the optimiser's momentum — as one
/// rank of a run holds it. Row-sharded state (<see cref="SslMethod.RowShardedState"/>) is gathered whole into the
/// checkpoint and scattered back on load, so a run resumes on any number of ranks; rank 0 alone writes and reads the file.
/// </summary>
sealed class RankState
{
    readonly SslMethod _method;
    readonly IOptimizer _optimizer;
    readonly ProcessGroup _processes;
    readonly Dictionary<string, long> _shardedRows = new();
    Dictionary<string, Tensor>? _loadedWhole;

    public RankState(SslMethod method, IOptimizer optimizer, ProcessGroup processes)
    {
        (_method, _optimizer, _processes) = (method, optimizer, processes);
        foreach (var (name, rows) in method.RowShardedState)
        {
            _shardedRows["model." + name] = rows;
            foreach (var (buffer, _) in optimizer.NamedBuffers().Where(b => b.Name.StartsWith(name + ".", StringComparison.Ordinal)))
                _shardedRows[Trainer.OptimizerStatePrefix + buffer] = rows;
        }
    }

    /// <summary>This rank's tensors by checkpoint name, in a fixed order (the same on every rank).</summary>
    IEnumerable<(string Name, Tensor Value)> Local()
    {
        foreach (var (name, value) in _method.state_dict()) yield return ("model." + name, value);
        foreach (var (name, buffer) in _optimizer.NamedBuffers()) yield return (Trainer.OptimizerStatePrefix + name, buffer);
    }

    /// <summary>Writes the checkpoint (rank 0); every rank must call it, as sharded state is gathered.</summary>
    public void Save(TrainingRun<CheckpointHeader> run, CheckpointHeader header)
    {
        using var scope = NewDisposeScope();
        var entries = Local().Select(e => (e.Name, _shardedRows.TryGetValue(e.Name, out long rows) ? RowShard.Gather(_processes, e.Value, rows) : e.Value)).ToList();
        run.SaveCheckpoint(header, entries);
    }

    /// <summary>Reads the run's checkpoint on this rank (rank 0 of a distributed run); sharded state is held whole until <see cref="ShareFromMain"/>.</summary>
    public void Load(TrainingRun<CheckpointHeader> run)
    {
        var targets = new Dictionary<string, Tensor>();
        _loadedWhole = new Dictionary<string, Tensor>();
        foreach (var (name, value) in Local())
        {
            if (_shardedRows.TryGetValue(name, out long rows) && _processes.IsDistributed)
                targets[name] = _loadedWhole[name] = zeros(new[] { rows }.Concat(value.shape.Skip(1)).ToArray(), value.dtype);
            else
                targets[name] = value;
        }
        run.LoadCheckpoint(targets);
    }

    /// <summary>
    /// Makes every rank's state rank 0's: replicated tensors broadcast, sharded ones (when a checkpoint was loaded)
    /// scattered, each rank keeping its rows.
    /// </summary>
    public void ShareFromMain(bool resumed)
    {
        using var noGrad = no_grad();
        foreach (var (name, value) in Local())
        {
            if (!_shardedRows.TryGetValue(name, out long rows))
            {
                _processes.Broadcast(value);
                continue;
            }
            if (!resumed) continue; // every rank took its rows of the same seeded initialisation
            using var block = RowShard.Scatter(_processes, _processes.IsMain ? _loadedWhole![name] : null, rows, value.shape.Skip(1).ToArray(), value.dtype);
            value.copy_(block);
        }
        foreach (var whole in _loadedWhole?.Values ?? Enumerable.Empty<Tensor>()) whole.Dispose();
        _loadedWhole = null;
    }
}
