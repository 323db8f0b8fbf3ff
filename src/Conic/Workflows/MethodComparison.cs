using System.Globalization;
using System.Text;
using Conic.Augmentation;
using Conic.Data;
using Conic.Evaluation;
using Conic.Methods;
using Conic.Runtime;
using Conic.Training;

namespace Conic.Workflows;

/// <summary>
/// One row of a comparison: a method, optionally with its own batch size, augmentation preset and pretraining
/// options. Written <c>NAME[@BATCH][+PRESET][:OPTION=VALUE]...</c>, e.g. <c>simclr@32</c>, <c>mocov2+infomin</c> or
/// <c>conic:lambda=0:seed=1</c> (options by their <c>conic pretrain</c> names without the dashes).
/// </summary>
public sealed record ComparisonEntry(string Method, int? BatchSize, string? AugmentationPreset, string? Options = null)
{
    /// <summary>The entry as written: METHOD[@BATCH][+PRESET][:OPTIONS].</summary>
    public string Label => Method + (BatchSize is int b ? $"@{b}" : "") + (AugmentationPreset is string p ? $"+{p}" : "") +
                           (Options is string o ? $":{o}" : "");

    /// <summary>The entry's options as (flag, value) pairs: <c>lambda=0</c> gives the flag with its dashes and "0".</summary>
    public IEnumerable<(string Flag, string Value)> OptionValues =>
        Options?.Split(':').Select(o => ("--" + o[..o.IndexOf('=')], o[(o.IndexOf('=') + 1)..])) ?? [];

    /// <summary>The entry <paramref name="text"/> names; a malformed one is a one-line error.</summary>
    public static ComparisonEntry Parse(string text)
    {
        string rest = text.Trim();
        string? options = null;
        int colon = rest.IndexOf(':');
        if (colon >= 0)
        {
            options = rest[(colon + 1)..];
            if (options.Split(':').Any(o => o.IndexOf('=') < 1))
                throw new ConicException($"--methods: '{text}': options after ':' are OPTION=VALUE, e.g. conic:lambda=0:seed=1");
            rest = rest[..colon];
        }
        string? preset = null;
        int? batch = null;
        int plus = rest.IndexOf('+');
        if (plus >= 0)
        {
            preset = rest[(plus + 1)..];
            AugmentationPresets.Named(preset);
            rest = rest[..plus];
        }
        int at = rest.IndexOf('@');
        if (at >= 0)
        {
            batch = int.TryParse(rest[(at + 1)..], NumberStyles.Integer, CultureInfo.InvariantCulture, out int b) && b >= 2
                ? b
                : throw new ConicException($"--methods: '{text}': the batch size after @ must be an integer >= 2");
            rest = rest[..at];
        }
        var method = MethodRegistry.Find(rest) ?? throw new ConicException($"--methods: unknown method '{rest}' (known: {string.Join(", ", MethodRegistry.Names)})");
        return new ComparisonEntry(method.Name, batch, preset, options);
    }

    /// <summary>The shared options with this entry's method, batch size, preset and options (by their <c>conic pretrain</c> flags) applied.</summary>
    public PretrainOptions Apply(PretrainOptions shared, string rootDirectory)
    {
        var options = shared.WithMethod(Method) with
        {
            BatchSize = BatchSize ?? shared.BatchSize,
            Augmentation = AugmentationPreset is string p ? AugmentationPresets.Named(p) : shared.Augmentation,
        };
        try
        {
            foreach (var (flag, value) in OptionValues) options = options.Set(flag, value);
        }
        catch (ConicException e)
        {
            throw new ConicException($"--methods: '{Label}': {e.Message}");
        }
        return options with { RunDirectory = Path.Combine(rootDirectory, FolderOf(Label)) };
    }

    /// <summary>An entry's run folder inside the comparison folder (<c>conic@32:lambda=0</c> → <c>conic-32-lambda0</c>).</summary>
    public static string FolderOf(string label) => label.Replace('@', '-').Replace('+', '-').Replace(':', '-').Replace("=", "");
}

/// <summary>What one method reached under the shared budget.</summary>
public sealed record ComparisonRow(string Label, int BatchSize, double KnnTop1, double LinearTop1, double TrainSeconds,
                                   double ImagesPerSecond, double? PeakMemoryMiB, double RawPixelKnnTop1);

/// <summary>
/// Trains every entry with the same data, epochs, instances and seed, one after another in this process, evaluates
/// each and writes compare.md and compare.csv. Entries already finished (eval.json present) are read back, and a
/// killed entry resumes from its checkpoint, so a long comparison can be stopped and restarted. The table keeps the
/// rows of earlier commands in the same folder, so a comparison can grow by several commands, one after another (one
/// writer per folder: entries trained side by side go to separate folders).
/// </summary>
public static class MethodComparison
{
    /// <summary>Pretrains and evaluates every entry under <paramref name="rootDirectory"/> (finished entries are read back), then writes compare.md and compare.csv; returns the rows.</summary>
    public static IReadOnlyList<ComparisonRow> Run(PretrainOptions shared, IReadOnlyList<ComparisonEntry> entries, DatasetSplits data,
                                                  string rootDirectory, TextWriter log)
    {
        Directory.CreateDirectory(rootDirectory);
        var rows = new List<ComparisonRow>();
        foreach (var entry in entries)
        {
            var options = entry.Apply(shared, rootDirectory);
            log.WriteLine($"== {entry.Label}: {options.LengthText}, {(options.Instances == 0 ? "all" : options.Instances)} instances, batch {options.BatchSize}");
            rows.Add(RunOne(entry, options, data, log));
            Write(rootDirectory, shared, WithEarlierRows(rootDirectory, rows));
        }
        return rows;
    }


    /// <summary>The rows of the folder's previous table in its order (as they are now on disk), then the rows new to it.</summary>
    static List<ComparisonRow> WithEarlierRows(string root, IReadOnlyList<ComparisonRow> rows)
    {
        string csvPath = new RunFolder(root).ComparisonTable;
        var earlierLabels = File.Exists(csvPath) ? File.ReadLines(csvPath).Skip(1).Select(line => line.Split(',')[0]).ToList() : [];
        var table = new List<ComparisonRow>();
        foreach (string label in earlierLabels)
        {
            string rowPath = new RunFolder(Path.Combine(root, ComparisonEntry.FolderOf(label))).ComparisonRow;
            if (rows.FirstOrDefault(r => r.Label == label) is ComparisonRow current) table.Add(current);
            else if (File.Exists(rowPath)) table.Add(RunJson.Read<ComparisonRow>(rowPath));
        }
        table.AddRange(rows.Where(r => !earlierLabels.Contains(r.Label)));
        return table;
    }

    static ComparisonRow RunOne(ComparisonEntry entry, PretrainOptions options, DatasetSplits data, TextWriter log)
    {
        string evalPath = new RunFolder(options.RunDirectory).Evaluation;
        string rowPath = new RunFolder(options.RunDirectory).ComparisonRow;
        if (File.Exists(evalPath) && File.Exists(rowPath))
        {
            string configPath = new RunFolder(options.RunDirectory).Config;
            if (!File.Exists(configPath))
                throw new ConicException($"{configPath}: missing, so this finished entry's options are unknown; delete {evalPath} to train it again");
            // config.json leaves the input channels to the images, as a run does: resolved on the same data.
            var saved = Trainer.Resolve(ConfigFile.Read(configPath), data.Train);
            // A finished entry counts only for the same budget (ComputesTheSame alone would let more epochs extend it).
            if (!Trainer.ComputesTheSame(saved, Trainer.Resolve(options, data.Train)) || saved.Epochs != options.Epochs)
                throw new ConicException($"{configPath}: this finished entry was trained with other options than this comparison asks for; " +
                                         "use another --run folder or the same options");
            log.WriteLine($"   already done: {rowPath}");
            return RunJson.Read<ComparisonRow>(rowPath);
        }
        ProcessMemory.ResetPeak();
        // No reports per entry (the HTML one takes a minute): `conic report --run ENTRY` writes them for the entries that interest.
        using var run = PretrainRun.Execute(options, data, log, resume: true, report: false);
        long? peak = ProcessMemory.PeakResidentBytes();
        var result = run.Evaluation!;
        var metrics = new MetricsCsv(new RunFolder(options.RunDirectory).Metrics);
        double imagesPerSecond = metrics.Column("images_per_second").Average(e => e.Value);
        // From the per-epoch times, so that a resumed entry still reports its whole training.
        double trainSeconds = metrics.Column("seconds").Sum(e => e.Value);
        var row = new ComparisonRow(entry.Label, options.BatchSize, result.KnnTop1, result.LinearTop1, trainSeconds, imagesPerSecond,
                                    peak / (1024.0 * 1024.0), result.RawPixelKnnTop1);
        RunJson.WriteAtomically(rowPath, row);
        return row;
    }

    static void Write(string root, PretrainOptions shared, IReadOnlyList<ComparisonRow> rows)
    {
        var csv = new StringBuilder("method,batch_size,knn_top1,linear_top1,train_seconds,images_per_second,peak_memory_mib\n");
        foreach (var r in rows)
            csv.AppendLine(string.Join(",", r.Label, r.BatchSize.ToString(CultureInfo.InvariantCulture), F(r.KnnTop1, "F4"), F(r.LinearTop1, "F4"),
                                       F(r.TrainSeconds, "F0"), F(r.ImagesPerSecond, "F0"), r.PeakMemoryMiB is double m ? F(m, "F0") : ""));
        AtomicFile.WriteText(new RunFolder(root).ComparisonTable, csv.ToString());

        var md = new StringBuilder();
        md.AppendLine($"Budget: {shared.LengthText} over {(shared.Instances == 0 ? "all" : shared.Instances.ToString(CultureInfo.InvariantCulture))} instances, " +
                      $"{shared.Backbone.Describe()}, seed {shared.Seed}; kNN k=200 on frozen backbone features, " +
                      (shared.Validation > 0 ? $"evaluated on a held-out {shared.Validation:P0} of the training images (--validation), not the test split.\n" : "evaluated on the test split.\n"));
        md.AppendLine("| method | batch | kNN top-1 | linear top-1 | train time | images/s | peak memory |");
        md.AppendLine("|---|---|---|---|---|---|---|");
        foreach (var r in rows)
            md.AppendLine($"| {r.Label} | {r.BatchSize} | {r.KnnTop1:P1} | {r.LinearTop1:P1} | {TimeSpan.FromSeconds(r.TrainSeconds):h\\:mm\\:ss} | " +
                          $"{r.ImagesPerSecond:F0} | {(r.PeakMemoryMiB is double m ? $"{m:F0} MiB" : "n/a")} |");
        md.AppendLine($"| raw pixels (floor) | | {rows[0].RawPixelKnnTop1:P1} | | | | |");
        if (WriteLearningCurves(root, rows, shared.Validation > 0 ? "train/validation" : "train/test")) md.AppendLine($"\n![online kNN against training time]({LearningCurvesFile})");
        AtomicFile.WriteText(Path.Combine(root, "compare.md"), md.ToString());
    }

    const string LearningCurvesFile = "learning-curves.png";

    /// <summary>Every entry's online kNN against its minutes of training, in one chart; false when no entry has monitor points.</summary>
    static bool WriteLearningCurves(string root, IReadOnlyList<ComparisonRow> rows, string splits) =>
        Reporting.LearningCurves.Write(Path.Combine(root, LearningCurvesFile), $"Online kNN ({splits} subsets) against training time",
                                       rows.Select(r => (r.Label, Path.Combine(root, ComparisonEntry.FolderOf(r.Label)))).ToList());

    static string F(double value, string format) => value.ToString(format, CultureInfo.InvariantCulture);
}
