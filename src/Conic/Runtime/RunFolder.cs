namespace Conic.Runtime;

/// <summary>
/// The files of a run folder, named in one place: what pretraining, evaluation, reports and comparisons write there.
/// Every file is written atomically (<see cref="AtomicFile"/>) by the one process holding <see cref="Lock"/>.
/// </summary>
public sealed record RunFolder(string Directory)
{
    /// <summary>The run's <c>PretrainOptions</c>; any run's is a valid <c>--config</c> file.</summary>
    public string Config => File("config.json");
    /// <summary>The model, optimiser state and where training stands (<c>Checkpoint</c>); a run resumes from it.</summary>
    public string Checkpoint => File("checkpoint.bin");
    /// <summary>One row per epoch: loss and its terms, learning rate, images per second, the online kNN.</summary>
    public string Metrics => File("metrics.csv");
    /// <summary>The evaluation's numbers (kNN, linear probe, floors, or a task's scores).</summary>
    public string Evaluation => File("eval.json");
    /// <summary>report.md.</summary>
    public string MarkdownReport => File("report.md");
    /// <summary>report.html.</summary>
    public string HtmlReport => File("report.html");
    /// <summary>The folder of TensorBoard event files.</summary>
    public string TensorBoard => File("tensorboard");
    /// <summary>A comparison's table of every entry (compare.md is its readable form).</summary>
    public string ComparisonTable => File("compare.csv");
    /// <summary>A comparison entry's row, kept so that a rerun comparison reads finished entries back.</summary>
    public string ComparisonRow => File("comparison-row.json");

    /// <summary>
    /// The resume/overwrite rule. With <paramref name="resume"/> a run continues the checkpoint when there is one (and
    /// starts when there is none); without, a folder holding a checkpoint is refused, never overwritten.
    /// </summary>
    /// <param name="describeCheckpoint">What the refusal says of the checkpoint found (its path given).</param>
    public bool ContinuesCheckpoint(bool resume, Func<string, string> describeCheckpoint)
    {
        if (!System.IO.File.Exists(Checkpoint)) return false;
        if (!resume)
            throw new ConicException($"{Directory}: holds a run already ({describeCheckpoint(Checkpoint)}); pass --resume to continue it or choose another --run");
        return true;
    }

    /// <summary>
    /// Takes the folder's writer lock (see <see cref="RunLock"/>), creating the folder unless told not to. A folder this
    /// call creates is removed again on release if it then holds no results (no checkpoint, no comparison table, no
    /// entry folder): a run that fails at its start leaves nothing behind.
    /// </summary>
    public RunLock Lock(bool create = true) => RunLock.Acquire(Directory, create, removeIfCreatedAndEmpty: () => !HoldsResults);

    bool HoldsResults =>
        System.IO.File.Exists(Checkpoint) || System.IO.File.Exists(ComparisonTable) ||
        System.IO.Directory.EnumerateDirectories(Directory).Any(sub => sub != TensorBoard);

    /// <summary>Images of the training data that could not be read, one per line with the problem.</summary>
    public string BadImages => File("bad-images.txt");

    string File(string name) => Path.Combine(Directory, name);
}
