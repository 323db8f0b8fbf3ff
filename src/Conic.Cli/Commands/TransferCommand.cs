using System.CommandLine;
using Conic.Runtime;
using Conic.Transfer;
using Conic.Workflows;

namespace Conic.Cli.Commands;

/// <summary><c>conic transfer</c>: several pretrained runs fine-tuned on one scene set; one table (transfer.md, transfer.csv).</summary>
static class TransferCommand
{
    const string Summary =
        "Fine-tunes each pretrained run (and random initialisation) for segmentation and detection on one scene set with the same settings, " +
        "with several fine-tuning seeds (a mean and 95 % interval per row, judged against a reference row), measures where each frozen encoder's activation falls " +
        "(share on the objects), and writes transfer.md, transfer.csv and transfer-samples.csv. " +
        "A stopped benchmark continues where it stopped when rerun. Processes with different rows may share --out (each fine-tune " +
        "has its own lock); each writes the table of its own rows, and a last call with every row assembles the whole table.";

    /// <summary>The fine-tuning settings the benchmark chooses per row: the task (both dense ones), all labels, and the backbone (its --runs entry).</summary>
    static readonly string[] ChosenPerRow = ["--task", "--label-fraction", Models.InitialWeights.Flag];

    public static Command Create()
    {
        var runs = new Option<string>("--runs")
        {
            HelpName = "LIST", Required = true,
            Description = "comma-separated NAME=RUN entries: RUN a pretrained run folder, RUN+RUN+... pretraining seeds of one row, or 'none' for random initialisation",
        };
        var output = new Option<string>("--out") { HelpName = "DIR", Description = "folder of the fine-tunes and the table", DefaultValueFactory = _ => "runs/transfer" };
        var tasks = new Option<string>("--tasks") { HelpName = "LIST", Description = "segmentation, detection or both", DefaultValueFactory = _ => "segmentation,detection" };
        var seeds = new Option<int>("--seeds")
        {
            HelpName = "N", DefaultValueFactory = _ => 1,
            Description = "fine-tuning seeds per pretrained run (--seed and the next ones); with 2 or more each row gets a 95 % interval and is judged against --reference",
        };
        var reference = new Option<string?>("--reference") { HelpName = "NAME", Description = "the row the others are judged against (default: the first pretrained row)" };
        var command = new Command("transfer", "Fine-tune several pretrained runs on one scene set (segmentation, detection) and write one table with intervals.");
        var settings = new SettingOptions<FinetuneOptions>(
            command, FinetuneOptions.SettingGroups.SelectMany(g => g.Settings).Where(s => !ChosenPerRow.Contains(s.Flag)), _ => FinetuneOptions.SettingGroups);
        Option[] own = [runs, output, tasks, seeds, reference];
        foreach (var option in own) command.Add(option);
        settings.UseGroupedHelp(command, Summary, result => settings.Apply(result, new FinetuneOptions()), own);
        command.SetAction(result =>
        {
            var entries = result.GetValue(runs)!.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(Entry).ToList();
            var chosen = result.GetValue(tasks)!.Split(',', StringSplitOptions.RemoveEmptyEntries)
                .Select(t => Enum.TryParse<TransferTask>(t, ignoreCase: true, out var task) && task != TransferTask.Classification ? task
                    : throw new ConicException($"--tasks: '{t}' is not segmentation or detection")).Distinct().ToList();
            var options = settings.Apply(result, new FinetuneOptions());
            if (options.Problem() is string problem) throw new ConicException(problem);
            string folder = result.GetValue(output)!;
            TransferBenchmark.Run(entries, options, result.GetValue(seeds), chosen, folder, Console.Error, result.GetValue(reference));
            Console.WriteLine(File.ReadAllText(Path.Combine(folder, "transfer.md")));
            return 0;
        });
        return command;
    }

    static TransferEntry Entry(string text)
    {
        var parts = text.Split('=', 2);
        if (parts.Length != 2 || parts[0].Length == 0) throw new ConicException($"--runs: '{text}' is not NAME=RUN");
        if (parts[1] == "none") return new TransferEntry(parts[0], []);
        var folders = parts[1].Split('+');
        foreach (string folder in folders)
            if (!File.Exists(new RunFolder(folder).Checkpoint))
                throw new ConicException($"{folder}: no checkpoint.bin (--runs {parts[0]}=RUN takes pretrained run folders joined by '+', or 'none')");
        return new TransferEntry(parts[0], folders);
    }
}
