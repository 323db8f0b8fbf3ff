using Conic.Data;
using Conic.Distributed;
using Conic.Evaluation;
using Conic.Reporting;
using Conic.Training;

namespace Conic.Workflows;

/// <summary>What a pretraining run produced: the trained model (the caller disposes it), its evaluation and warnings about it.</summary>
public sealed record PretrainRunResult(PretrainedModel Model, EvaluationResult? Evaluation, IReadOnlyList<string> Warnings) : IDisposable
{
    /// <summary>Frees the model.</summary>
    public void Dispose() => Model.Dispose();
}

/// <summary>
/// Pretrain, evaluate, report: the whole of <c>conic pretrain</c>, and of each entry of <c>conic compare</c>, as one call
/// for C# code too.
/// </summary>
public static class PretrainRun
{
    /// <summary>
    /// What writing the reports takes, set aside from a time budget: mostly the t-SNE of up to 2,000 test images
    /// (15 s for Fashion-MNIST on 2 cores).
    /// </summary>
    static double ReportSeconds(DatasetSplits data) => 3 + 0.008 * Math.Min(2_000, data.Test?.Count ?? data.Train.Count);

    /// <summary>The threads evaluation runs on: all of the cores once a data-parallel run's ranks have left.</summary>
    static int EvaluationThreads(PretrainOptions options, ProcessGroup processes) =>
        processes.IsDistributed ? Math.Max(options.Threads, Environment.ProcessorCount) : TorchSharp.torch.get_num_threads();

    /// <param name="resume">Continue the run folder's checkpoint (or start, when there is none).</param>
    /// <param name="evaluate">kNN and linear probe on the test split, when both splits are labelled; writes eval.json.</param>
    /// <param name="report">Write report.md and report.html.</param>
    /// <param name="startedUtc">When the run started, data loading included: a <c>--time-budget</c> counts from there (default: now).</param>
    /// <param name="processes">The ranks of a data-parallel run; rank 0 alone evaluates and reports.</param>
    /// <param name="progress">Told after every training step and epoch (<see cref="TrainingProgress"/>), on the training thread.</param>
    /// <param name="cancellation">Stops the run (<see cref="OperationCanceledException"/>) before its next step, or before
    /// evaluation; the run folder stays consistent and <paramref name="resume"/> continues it (<see cref="Trainer.Pretrain"/>).</param>
    public static PretrainRunResult Execute(PretrainOptions options, DatasetSplits data, TextWriter log, bool resume = false, bool evaluate = true,
                                            bool report = true, DateTime? startedUtc = null, ProcessGroup? processes = null,
                                            IProgress<TrainingProgress>? progress = null, CancellationToken cancellation = default)
    {
        processes ??= ProcessGroup.Single;
        bool evaluable = evaluate && data.Test?.Labels != null && data.Train.Labels != null;
        var budget = new RunBudget(startedUtc ?? DateTime.UtcNow,
                                   model => (evaluable ? Evaluator.EstimateSeconds(model, data, EvaluationThreads(options, processes)) : 0) +
                                            (report ? ReportSeconds(data) : 0));
        var model = Trainer.Pretrain(options, data.Train, log, resume, KnnMonitor.Create(data, options.Seed) is { } monitor ? monitor.Measure : null,
                                     budget, processes, progress, cancellation);
        if (processes.IsDistributed)
        {
            // Training is over: the ranks leave MPI, the others exit, and rank 0 evaluates alone on all of the cores.
            processes.Dispose();
            if (!processes.IsMain) return new PretrainRunResult(model, null, []);
            TorchSharp.torch.set_num_threads(EvaluationThreads(options, processes));
        }
        try
        {
            cancellation.ThrowIfCancellationRequested();
            EvaluationResult? evaluation = null;
            if (evaluable)
                evaluation = Evaluator.EvaluateRun(model, options.RunDirectory, data, log);
            else if (evaluate)
                log.WriteLine("no labelled test split: skipping evaluation");
            if (report)
            {
                log.WriteLine($"report: {MarkdownReport.Write(options.RunDirectory, model.Options, evaluation)}");
                log.WriteLine($"report: {HtmlReport.Write(options.RunDirectory, model, data, log: log)}");
            }
            var warnings = RunDiagnosis.Warnings(options.RunDirectory, evaluation).ToList();
            foreach (string warning in warnings) log.WriteLine($"warning: {warning}");
            return new PretrainRunResult(model, evaluation, warnings);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// <see cref="Execute"/> on a worker thread, for UI and service code: <paramref name="progress"/> gets every step and
    /// epoch, <paramref name="cancellation"/> stops the run before its next step with the run folder consistent (the
    /// task ends cancelled; run again with <paramref name="resume"/> to continue), and <paramref name="log"/> is optional.
    /// </summary>
    public static Task<PretrainRunResult> ExecuteAsync(PretrainOptions options, DatasetSplits data, IProgress<TrainingProgress>? progress = null,
                                                       TextWriter? log = null, bool resume = false, bool evaluate = true, bool report = true,
                                                       CancellationToken cancellation = default) =>
        Task.Run(() => Execute(options, data, log ?? TextWriter.Null, resume, evaluate, report, progress: progress, cancellation: cancellation), cancellation);
}
