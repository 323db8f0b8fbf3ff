using Conic.Data;
using Conic.Evaluation;
using Conic.Reporting;
using Conic.Training;

namespace Conic.Workflows;

/// <summary>What a pretraining run produced: the trained model (the caller disposes it), its evaluation and warnings about it.</summary>
public sealed record PretrainRunResult(PretrainedModel Model, EvaluationResult? Evaluation, IReadOnlyList<string> Warnings) : IDisposable
{
    public void Dispose() => Model.Dispose();
}

/// <summary>
/// Pretrain, evaluate, report: the whole of <c>conic pretrain</c>, and of each entry of <c>conic compare</c>, as one call
/// for C# code too.
/// </summary>
public static class PretrainRun
{
    /// <param name="resume">Continue the run folder's checkpoint (or start, when there is none).</param>
    /// <param name="evaluate">kNN and linear probe on the test split, when both splits are labelled; writes eval.json.</param>
    /// <param name="report">Write report.md and report.html.</param>
    public static PretrainRunResult Execute(PretrainOptions options, DatasetSplits data, TextWriter log, bool resume = false, bool evaluate = true,
                                            bool report = true)
    {
        var model = Trainer.Pretrain(options, data.Train, log, resume, KnnMonitor.Create(data, options.Seed) is { } monitor ? monitor.Measure : null);
        try
        {
            EvaluationResult? evaluation = null;
            if (evaluate && data.Test?.Labels != null && data.Train.Labels != null)
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
}
