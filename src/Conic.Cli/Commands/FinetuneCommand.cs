using System.CommandLine;
using Conic.Models;
using Conic.Runtime;
using Conic.Transfer;

namespace Conic.Cli.Commands;

/// <summary>
/// <c>conic finetune</c>: a pretrained backbone (or a random one) trained end to end on a labelled task; and
/// <c>conic probe</c>: the same machinery with the task fixed to classification and the backbone frozen.
/// </summary>
static class FinetuneCommand
{
    public static Command Create() => Build(probe: false);

    public static Command CreateProbe() => Build(probe: true);

    static Command Build(bool probe)
    {
        var defaults = new FinetuneOptions();
        var run = new Option<string>(Training.PretrainOptions.RunFlag) { HelpName = "DIR", Description = "pretrained run folder whose backbone starts the network, or 'none' for random initialisation", Required = true };
        var task = new Option<string>("--task") { HelpName = "NAME", Description = "segmentation, detection or classification", DefaultValueFactory = _ => "segmentation" };
        task.AcceptOnlyFromAmong("segmentation", "detection", "classification");
        var data = new Option<string>("--data")
        {
            HelpName = "DIR",
            Description = "segmentation: train/images + train/masks and val/ (or test/) the same (masks: PNG class indices, 255 = ignore; " +
                          "classes.txt names the classes); detection: train/annotations.json (COCO) with its images in train/images/ or beside it, and val/ the same; " +
                          "classification: labelled IDX files or train/ and test/ folders of class subfolders (default: Fashion-MNIST)",
        };
        var output = new Option<string?>("--out") { HelpName = "DIR", Description = probe ? "probe run folder with --save (default: RUN/probe, or runs/probe-random)" : "fine-tune run folder (default: RUN/finetune-TASK, or runs/finetune-TASK-random)" };
        var epochs = new Option<int?>("--epochs") { HelpName = "N", Description = $"passes over the training images (default: {defaults.Epochs}; with --resume, the run's)" };
        var batch = new Option<int>("--batch-size") { HelpName = "N", Description = "images per step", DefaultValueFactory = _ => defaults.BatchSize };
        var rate = new Option<double>("--lr") { HelpName = "RATE", Description = "peak SGD learning rate (one-epoch warm-up, then cosine)", DefaultValueFactory = _ => defaults.LearningRate };
        var decay = new Option<double>("--wd") { HelpName = "DECAY", Description = "weight decay", DefaultValueFactory = _ => defaults.WeightDecay };
        var fraction = new Option<double>("--label-fraction") { HelpName = "F", Description = "classification: share of the training labels used, balanced over classes (e.g. 0.01, 0.1)", DefaultValueFactory = _ => 1 };
        var freeze = new Option<bool>("--freeze-backbone") { Description = "train the head only, the backbone kept as pretrained" };
        var size = new Option<int?>("--image-size") { HelpName = "PX", Description = "resize images and masks to this square side (default: their own, when all are square and one size)" };
        var width = new Option<int>("--width") { HelpName = "C", Description = "first-stage channels of the random backbone (--run none)", DefaultValueFactory = _ => defaults.Backbone.Width };
        var seed = new Option<int>("--seed") { HelpName = "N", Description = "seed for the head, order and flips", DefaultValueFactory = _ => defaults.Seed };
        var threads = new Option<int>("--threads") { HelpName = "N", Description = "CPU threads for libtorch; 0 = one per core", DefaultValueFactory = _ => 0 };
        var device = new Option<string>("--device") { HelpName = "DEV", Description = "cpu, cuda or cuda:N", DefaultValueFactory = _ => "cpu" };
        var precision = new Option<string>("--precision") { HelpName = "P", Description = "backbone convolutions in training: auto (bfloat16 where the CPU has it and the arithmetic check finds it right), fp32 or bf16", DefaultValueFactory = _ => "auto" };
        precision.AcceptOnlyFromAmong("auto", "fp32", "bf16");
        var resume = new Option<bool>("--resume") { Description = "continue the fine-tune run's last checkpoint" };
        var save = new Option<bool>("--save") { Description = "keep the probe as a run folder (default RUN/probe): checkpoint, eval.json, report, ONNX export of image -> class" };
        var command = probe
            ? new Command("probe",
                "Trains a linear classifier on the frozen backbone's pooled features of labelled images (all, or --label-fraction of them) and " +
                "reports top-1 on the test split, per class too. It is `finetune --task classification --freeze-backbone`: flips and shifts, " +
                "SGD with a cosine schedule; `eval`'s linear probe instead fits Adam on standardised features computed once, so their numbers differ a little. " +
                "With --save the probe is a run folder like any fine-tune (export it with `conic export --run DIR --format onnx`).")
                { run, data, output, epochs, batch, rate, decay, fraction, size, width, seed, precision, threads, device, save, resume }
            : new Command("finetune",
            "Fine-tunes a pretrained backbone with a task head on labelled data, end to end, and evaluates it on the validation split. " +
            "Both tasks put a light FPN decoder over the ResNet stages. Segmentation: per-pixel cross-entropy; reports per-class IoU, mIoU " +
            "and pixel accuracy. Detection: a CenterNet head (class heat maps, box sizes and offsets at the centres; no anchors, no NMS); " +
            "reports COCO box AP (IoU 0.50:0.95), AP50 and AP75. Classification: a linear layer on the pooled features, trained with all or " +
            "--label-fraction of the labels; reports top-1 accuracy. The fine-tune run folder holds config, checkpoint (--resume), metrics.csv, " +
            "eval.json and (segmentation, detection) predictions.png.")
            { run, task, data, output, epochs, batch, rate, decay, fraction, freeze, size, width, seed, precision, threads, device, resume };
        command.SetAction(result =>
        {
            string pretrained = result.GetValue(run)!;
            bool random = pretrained == "none";
            if (!random && !File.Exists(new RunFolder(pretrained).Checkpoint))
                throw new ConicException($"{pretrained}: no checkpoint.bin (a pretrained run folder, or 'none' for a random backbone)");
            string name = probe ? "probe" : $"finetune-{result.GetValue(task)}";
            bool keep = !probe || result.GetValue(save);
            string folder = !keep ? Directory.CreateTempSubdirectory("conic-probe-").FullName
                : result.GetValue(output) ?? (random ? Path.Combine("runs", name + "-random") : Path.Combine(pretrained, name));
            string checkpoint = new RunFolder(folder).Checkpoint;
            int? savedEpochs = result.GetValue(resume) && File.Exists(checkpoint)
                ? Training.Checkpoint.ReadHeader<FinetuneCheckpointHeader>(checkpoint).Options.Epochs : null;
            var options = new FinetuneOptions
            {
                Task = probe ? TransferTask.Classification : Enum.Parse<TransferTask>(result.GetValue(task)!, ignoreCase: true),
                InitRun = random ? null : pretrained, DataPath = result.GetValue(data), LabelFraction = result.GetValue(fraction), Epochs = result.GetValue(epochs) ?? savedEpochs ?? defaults.Epochs,
                BatchSize = result.GetValue(batch), LearningRate = result.GetValue(rate), WeightDecay = result.GetValue(decay),
                FreezeBackbone = probe || result.GetValue(freeze), ImageSize = result.GetValue(size), Seed = result.GetValue(seed),
                Threads = result.GetValue(threads), Device = result.GetValue(device)!,
                Precision = result.GetValue(precision) switch { "fp32" => Precision.Float32, "bf16" => Precision.BFloat16, _ => Precision.Auto },
                Backbone = new BackboneOptions { Width = result.GetValue(width) },
            };
            try
            {
                // An unsaved probe's folder goes away: lines that point into it are left out.
                foreach (string line in Finetuner.Run(options, folder, result.GetValue(resume), Console.Error).Where(line => keep || !line.Contains(folder)))
                    Console.Error.WriteLine(line);
            }
            finally
            {
                if (!keep) Directory.Delete(folder, recursive: true);
            }
            return 0;
        });
        return command;
    }
}
