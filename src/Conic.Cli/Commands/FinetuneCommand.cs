using System.CommandLine;
using Conic.Runtime;
using Conic.Training;
using Conic.Transfer;

namespace Conic.Cli.Commands;

/// <summary>
/// <c>conic finetune</c>: a pretrained backbone (or a random one) trained end to end on a labelled task; and
/// <c>conic probe</c>: the same machinery with the task fixed to classification and the backbone frozen. Their settings
/// are <see cref="FinetuneOptions.SettingGroups"/>.
/// </summary>
static class FinetuneCommand
{
    const string FinetuneSummary =
        "Fine-tunes a pretrained backbone with a task head on labelled data, end to end, and evaluates it on the validation split. " +
        "Both dense tasks put a light FPN decoder over the backbone's four stages (a ViT's: a simple pyramid of its one map). Segmentation: per-pixel cross-entropy; reports per-class IoU, mIoU " +
        "and pixel accuracy. Detection: a CenterNet head (class heat maps, box sizes and offsets at the centres; no anchors, no NMS); " +
        "reports COCO box AP (IoU 0.50:0.95), AP50 and AP75. Classification: a linear layer on the pooled features, trained with all or " +
        "--label-fraction of the labels; reports top-1 accuracy. The fine-tune run folder holds config, checkpoint (--resume), metrics.csv, " +
        "eval.json and (segmentation, detection) predictions.png.";

    const string ProbeSummary =
        "Trains a linear classifier on the frozen backbone's pooled features of labelled images (all, or --label-fraction of them) and " +
        "reports top-1 on the test split, per class too. It is `finetune --task classification --freeze-backbone`: flips and shifts, " +
        "SGD with a cosine schedule; `eval`'s linear probe instead fits Adam on standardised features computed once, so their numbers differ a little. " +
        "With --save the probe is a run folder like any fine-tune (export it with `conic export --run DIR --format onnx`).";

    /// <summary>The settings a probe fixes: it classifies, on a frozen backbone.</summary>
    static readonly string[] FixedByProbe = ["--task", "--freeze-backbone"];

    public static Command Create() => Build(probe: false);

    public static Command CreateProbe() => Build(probe: true);

    static Command Build(bool probe)
    {
        var run = new Option<string>(PretrainOptions.RunFlag)
        {
            HelpName = "DIR", Required = true, Description = "pretrained run folder whose backbone starts the network, or 'none' for a random backbone or one from --init FILE",
        };
        var output = new Option<string?>("--out")
        {
            HelpName = "DIR",
            Description = probe ? "probe run folder with --save (default: RUN/probe, or runs/probe-random)" : "fine-tune run folder (default: RUN/finetune-TASK, or runs/finetune-TASK-random, or runs/finetune-TASK-NAME for --init NAME.pth)",
        };
        var resume = new Option<bool>("--resume") { Description = "continue the fine-tune run's last checkpoint with its settings (flags may add epochs or change where it runs)" };
        var save = new Option<bool>("--save") { Description = "keep the probe as a run folder (default RUN/probe): checkpoint, eval.json, report, ONNX export of image -> class" };
        var command = probe
            ? new Command("probe", "Train a linear classifier on a frozen encoder's features of labelled images and report top-1.")
            : new Command("finetune", "Fine-tune a pretrained (or random) backbone with a task head on labelled data: segmentation, detection or classification.");
        var settings = new SettingOptions<FinetuneOptions>(
            command, FinetuneOptions.SettingGroups.SelectMany(g => g.Settings).Where(s => !probe || !FixedByProbe.Contains(s.Flag)), _ => FinetuneOptions.SettingGroups);
        Option[] own = probe ? [run, output, save, resume] : [run, output, resume];
        foreach (var option in own) command.Add(option);
        var invocation = new Invocation(probe, run, output, resume, save, settings);
        settings.UseGroupedHelp(command, probe ? ProbeSummary : FinetuneSummary, result => invocation.Options(result, invocation.Folder(result)), own);
        command.SetAction(invocation.Execute);
        return command;
    }

    sealed record Invocation(bool Probe, Option<string> Run, Option<string?> Output, Option<bool> Resume, Option<bool> Save, SettingOptions<FinetuneOptions> Settings)
    {
        FinetuneOptions Defaults => Probe ? new FinetuneOptions { Task = TransferTask.Classification, FreezeBackbone = true } : new FinetuneOptions();

        /// <summary>The pretrained run, or "none" (also while --help shows the defaults without the required --run).</summary>
        string Pretrained(ParseResult result) => result.GetResult(Run)?.Tokens.Count > 0 ? result.GetValue(Run)! : "none";

        bool Keeps(ParseResult result) => !Probe || result.GetValue(Save);

        /// <summary>The run folder the user named or the default for the task; null for a probe that is not kept.</summary>
        public string? Folder(ParseResult result)
        {
            if (!Keeps(result)) return null;
            string pretrained = Pretrained(result);
            string name = Probe ? "probe" : $"finetune-{Settings.Apply(result, Defaults).Task.ToString().ToLowerInvariant()}";
            string? init = Settings.Given(result, Models.InitialWeights.Flag);
            string start = init != null ? Path.GetFileNameWithoutExtension(init) : "random";
            return result.GetValue(Output) ?? (pretrained == "none" ? Path.Combine("runs", $"{name}-{start}") : Path.Combine(pretrained, name));
        }

        /// <summary>The flags applied to the defaults, or with --resume to the settings of the run they continue.</summary>
        public FinetuneOptions Options(ParseResult result, string? folder)
        {
            string? checkpoint = folder == null ? null : new RunFolder(folder).Checkpoint;
            var start = result.GetValue(Resume) && File.Exists(checkpoint)
                ? Checkpoint.ReadHeader<FinetuneCheckpointHeader>(checkpoint).Options
                : Defaults;
            string pretrained = Pretrained(result);
            var options = Settings.Apply(result, start);
            return options with { InitRun = pretrained == "none" ? null : pretrained, Backbone = Settings.BackboneOfInit(result, options.Backbone) };
        }

        public int Execute(ParseResult result)
        {
            string pretrained = Pretrained(result);
            if (pretrained != "none" && !File.Exists(new RunFolder(pretrained).Checkpoint))
                throw new ConicException($"{pretrained}: no checkpoint.bin (a pretrained run folder, or 'none' for a random backbone)");
            string folder = Folder(result) ?? Directory.CreateTempSubdirectory("conic-probe-").FullName;
            bool keep = Keeps(result);
            try
            {
                // An unsaved probe's folder goes away: lines that point into it are left out.
                foreach (string line in Finetuner.Run(Options(result, folder), folder, result.GetValue(Resume), Console.Error).Where(line => keep || !line.Contains(folder)))
                    Console.Error.WriteLine(line);
            }
            finally
            {
                if (!keep) Directory.Delete(folder, recursive: true);
            }
            return 0;
        }
    }
}
