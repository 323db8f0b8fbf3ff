using Conic.Runtime;
using static TorchSharp.torch;

namespace Conic.Training;

/// <summary>
/// A run folder while one run trains in it: the writer lock, the resume rule, config.json, metrics.csv and the
/// checkpoint. Pretraining and fine-tuning both keep their folder through it. In a data-parallel run every rank opens
/// one and only rank 0's writes (the others hold no lock, read nothing and write nothing), so the training code makes
/// the same calls on every rank.
/// </summary>
/// <typeparam name="THeader">The checkpoint's header: <see cref="CheckpointHeader"/> for pretraining.</typeparam>
public sealed class TrainingRun<THeader> : IDisposable where THeader : class
{
    readonly RunLock? _lock;
    readonly MetricsCsv _metrics;

    TrainingRun(RunFolder folder, RunLock? runLock, THeader? resumed, int completedEpochs)
    {
        (Folder, _lock, Resumed) = (folder, runLock, resumed);
        _metrics = new MetricsCsv(folder.Metrics);
        // metrics.csv keeps the rows of the epochs the checkpoint holds, so it always matches the weights.
        if (Writes) _metrics.StartAfter(completedEpochs);
    }

    /// <summary>The folder's files.</summary>
    public RunFolder Folder { get; }

    /// <summary>The header of the checkpoint this run continues; null for a new run, and on every rank but 0.</summary>
    public THeader? Resumed { get; }

    /// <summary>Whether this process writes the folder (rank 0 of a data-parallel run, the only process otherwise).</summary>
    public bool Writes => _lock != null;

    /// <summary>
    /// Opens <paramref name="directory"/> to train in: takes its writer lock and applies the resume rule of
    /// <see cref="RunFolder.ContinuesCheckpoint"/> (with <paramref name="resume"/> the checkpoint there is continued, without
    /// it a folder holding one is refused).
    /// </summary>
    /// <param name="describe">What a refusal says of the checkpoint found, e.g. "checkpoint after epoch 3".</param>
    /// <param name="completedEpochs">The epochs a checkpoint's header says it holds.</param>
    /// <param name="writes">False on the ranks of a data-parallel run other than 0.</param>
    public static TrainingRun<THeader> Open(string directory, bool resume, Func<THeader, string> describe, Func<THeader, int> completedEpochs,
                                            TextWriter log, bool writes = true)
    {
        var folder = new RunFolder(directory);
        if (!writes) return new TrainingRun<THeader>(folder, null, null, 0);
        var runLock = folder.Lock();
        try
        {
            var resumed = folder.ContinuesCheckpoint(resume, path => describe(Checkpoint.ReadHeader<THeader>(path)))
                ? Checkpoint.ReadHeader<THeader>(folder.Checkpoint)
                : null;
            if (resume && resumed == null) log.WriteLine($"no checkpoint in {directory}; starting from scratch");
            return new TrainingRun<THeader>(folder, runLock, resumed, resumed == null ? 0 : completedEpochs(resumed));
        }
        catch
        {
            runLock.Dispose();
            throw;
        }
    }

    /// <summary>Reads the continued checkpoint's tensors into <paramref name="targets"/> (by name, shapes checked).</summary>
    public void LoadCheckpoint(IReadOnlyDictionary<string, Tensor> targets) => Checkpoint.Load<THeader>(Folder.Checkpoint, targets);

    /// <summary>Writes <paramref name="json"/>, the run's settings, as config.json.</summary>
    public void WriteConfig(string json)
    {
        if (Writes) AtomicFile.WriteText(Folder.Config, json);
    }

    /// <summary>Adds a finished epoch's row to metrics.csv (rank 0 only).</summary>
    public void AppendMetrics(EpochMetrics metrics)
    {
        if (Writes) _metrics.Append(metrics);
    }

    /// <summary>One column of metrics.csv by epoch (see <see cref="MetricsCsv.Column"/>).</summary>
    public IReadOnlyList<(int Epoch, double Value)> MetricsColumn(string column) => _metrics.Column(column);

    /// <summary>Replaces the checkpoint atomically: a run killed at any moment leaves the previous or this one.</summary>
    public void SaveCheckpoint(THeader header, IEnumerable<(string Name, Tensor Value)> tensors)
    {
        if (Writes) Checkpoint.Save(Folder.Checkpoint, header, tensors);
    }

    /// <summary>Releases the writer lock.</summary>
    public void Dispose() => _lock?.Dispose();
}
