using Conic.Comparison;
using Conic.Data;
using Conic.Training;

namespace Conic.Cli.Commands;

/// <summary><c>conic compare</c>: several methods under one budget and seed; one table (compare.md, compare.csv).</summary>
static class CompareCommand
{
    const string DefaultMethods = "conic,instdisc,mocov1,mocov2,simclr,byol,swav,mocov2+infomin,conic@32,simclr@32";

    public static int Run(string[] args)
    {
        var options = new PretrainOptions { RunDirectory = "runs/compare" };
        string methods = DefaultMethods;
        var table = new OptionTable("compare",
            "Pretrains each method with the same data, epochs, instances and seed (one after another), evaluates each\n" +
            "(kNN, linear probe) and writes compare.md and compare.csv with accuracy, training time, images/s and peak\n" +
            "memory. Entries are NAME[@BATCH][+PRESET][:OPTION=VALUE]..., e.g. simclr@32, mocov2+infomin,\n" +
            "conic:lambda=0:seed=1. A stopped comparison continues where it stopped when rerun.");
        table.Value("--methods", "LIST", "comma-separated entries", () => methods, v => methods = v);
        PretrainCommand.AddOptions(table, () => options, o => options = o);
        if (!table.Parse(args)) return 0;

        var entries = methods.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(ComparisonEntry.Parse).ToList();
        // Every entry's options are checked before the first one trains for hours.
        foreach (var entry in entries) entry.Apply(options, options.RunDirectory, ApplyOptions).Validate();
        var data = DatasetLoader.Load(options.DataPath, options.ImageSize);
        if (data.Test?.Labels == null || data.Train.Labels == null)
            throw new ConicException($"{data.Train.Source}: compare evaluates every method, so it needs labelled train and test splits");
        using var runLock = Runtime.RunLock.Acquire(options.RunDirectory);
        MethodComparison.Run(options, entries, data, options.RunDirectory, Console.Error, ApplyOptions);
        Console.WriteLine(File.ReadAllText(Path.Combine(options.RunDirectory, "compare.md")));
        return 0;
    }

    static PretrainOptions ApplyOptions(PretrainOptions options, IReadOnlyList<string> arguments)
    {
        var table = new OptionTable("pretrain", "");
        PretrainCommand.AddOptions(table, () => options, o => options = o);
        table.Parse(arguments);
        return options;
    }
}
