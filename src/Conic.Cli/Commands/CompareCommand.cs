using System.CommandLine;
using Conic.Workflows;
using Conic.Data;
using Conic.Training;

namespace Conic.Cli.Commands;

/// <summary><c>conic compare</c>: several methods under one budget and seed; one table (compare.md, compare.csv).</summary>
static class CompareCommand
{
    const string DefaultMethods = "conic,instdisc,mocov1,mocov2,simclr,byol,swav,mocov2+infomin,conic@32,simclr@32";

    const string Summary =
        "Pretrains each method with the same data, epochs, instances and seed (one after another), evaluates each (kNN, linear probe) " +
        "and writes compare.md and compare.csv with accuracy, training time, images/s and peak memory. Entries are " +
        "NAME[@BATCH][+PRESET][:SETTING=VALUE]..., e.g. simclr@32, mocov2+infomin, conic:lambda=0:seed=1, with the settings of " +
        "'conic pretrain --method NAME --help'. A stopped comparison continues where it stopped when rerun.";

    public static Command Create()
    {
        var command = new Command("compare", "pretrain several methods under one budget and seed, evaluate each, write one table");
        var methods = new Option<string>("--methods") { HelpName = "LIST", Description = $"comma-separated entries (default: {DefaultMethods})", DefaultValueFactory = _ => DefaultMethods };
        var settings = PretrainCommand.SettingsOf(command, withMethods: false);
        command.Add(methods);
        settings.UseGroupedHelp(command, Summary, result => Options(result, settings), [methods]);
        command.SetAction(result => Run(Options(result, settings), result.GetValue(methods)!));
        return command;
    }

    static PretrainOptions Options(ParseResult result, SettingOptions<PretrainOptions> settings) =>
        settings.Apply(result, new PretrainOptions { RunDirectory = "runs/compare", Instances = 2048 });

    static int Run(PretrainOptions options, string methods)
    {
        var entries = methods.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(ComparisonEntry.Parse).ToList();
        // Every entry's options are checked before the first one trains for hours.
        foreach (var entry in entries) entry.Apply(options, options.RunDirectory).Validate();
        var data = options.LoadData(Console.Error);
        foreach (string note in data.Notes) Console.Error.WriteLine($"note: {note}");
        if (data.Test?.Labels == null || data.Train.Labels == null)
            throw new ConicException($"{data.Train.Source}: compare evaluates every method, so it needs labelled train and test splits");
        using var runLock = new Runtime.RunFolder(options.RunDirectory).Lock();
        MethodComparison.Run(options, entries, data, options.RunDirectory, Console.Error);
        Console.WriteLine(File.ReadAllText(Path.Combine(options.RunDirectory, "compare.md")));
        return 0;
    }
}
