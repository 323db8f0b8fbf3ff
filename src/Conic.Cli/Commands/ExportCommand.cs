using System.CommandLine;
using System.Globalization;
using Conic.Export;
using Conic.Training;
using Conic.Runtime;

namespace Conic.Cli.Commands;

/// <summary><c>conic export</c>: the trained backbone in a format other frameworks load.</summary>
static class ExportCommand
{
    enum Format { Safetensors, PyTorch, Onnx }

    public static Command Create()
    {
        var run = FinishedRun.RunOption();
        var format = new Option<string>("--format") { HelpName = "NAME", Description = "safetensors, pytorch or onnx", DefaultValueFactory = _ => "safetensors" };
        format.AcceptOnlyFromAmong(Enum.GetNames<Format>().Select(n => n.ToLowerInvariant()).ToArray());
        var output = new Option<string?>("--out") { HelpName = "PATH", Description = "output file (default: RUN/encoder.safetensors, .pt or .onnx)" };
        var command = new Command("export",
            "Writes the trained backbone with torchvision's ResNet parameter names (conv1, bn1, layer1.0.conv1, ...; no fc), or timm's ViT " +
            "and ConvNeXt names (patch_embed.proj, blocks.0.attn.qkv, ...; stem.0, stages.0.blocks.0.conv_dw, ..., head.norm; no classifier), " +
            "as safetensors or as a PyTorch state_dict (torch.load). " +
            "torchvision's resnet18/50 (width 64) load it with strict=True once conv1/maxpool match the run's stem and fc is nn.Identity(); " +
            "inputs are normalised with the channel mean and std printed here (and stored in the safetensors metadata). Or as " +
            "an ONNX model (ONNX Runtime, ML.NET): input 'image', pixels in [0, 1] as [batch, C, " +
            "height, width] float32, normalisation included; output 'features' [batch, D]; batch and size dynamic, training image size " +
            "in the metadata. A model card (README.md) is written beside the file.") { run, format, output };
        command.SetAction(result => Run(result.GetValue(run)!, Enum.Parse<Format>(result.GetValue(format)!, ignoreCase: true), result.GetValue(output)));
        return command;
    }

    static int Run(string run, Format format, string? output)
    {
        using var runLock = new Runtime.RunFolder(run).Lock(create: false);
        if (Transfer.FinetunedModel.IsFinetuneRun(run)) return ExportFinetuned(run, format, output);

        using var model = FinishedRun.LoadModel(run, "cpu");
        string path = output ?? Path.Combine(run, format switch { Format.PyTorch => "encoder.pt", Format.Onnx => "encoder.onnx", _ => "encoder.safetensors" });
        var options = model.Backbone.Options;
        var metadata = new Dictionary<string, string>
        {
            ["arch"] = options.ArchitectureName,
            ["width"] = options.Width.ToString(CultureInfo.InvariantCulture),
            ["stem"] = model.Backbone.StemDescription,
            ["input_channels"] = options.InputChannels.ToString(CultureInfo.InvariantCulture),
            ["channel_mean"] = string.Join(",", model.Normalization.Mean.Select(m => m.ToString("R", CultureInfo.InvariantCulture))),
            ["channel_std"] = string.Join(",", model.Normalization.Std.Select(s => s.ToString("R", CultureInfo.InvariantCulture))),
            ["method"] = model.Options.Method,
        };
        var (height, width) = FinishedRun.ImageSize(model);
        metadata["image_height"] = height.ToString(CultureInfo.InvariantCulture);
        metadata["image_width"] = width.ToString(CultureInfo.InvariantCulture);
        switch (format)
        {
            case Format.PyTorch:
                TorchSharp.PyBridge.PyTorchPickler.PickleStateDict(path, model.Backbone.state_dict());
                break;
            case Format.Onnx:
                OnnxWriter.Write(path, model.Backbone, model.Normalization.Mean, model.Normalization.Std, metadata);
                break;
            default:
                // "format": "pt" tells safetensors' loaders the tensors are PyTorch's.
                SafetensorsWriter.Write(path, model.Backbone.state_dict().Select(kv => (kv.Key, kv.Value)), new Dictionary<string, string>(metadata) { ["format"] = "pt" });
                break;
        }
        string input = format == Format.Onnx
            ? $"input '{OnnxWriter.InputName}': pixels in [0, 1], [batch, {options.InputChannels}, {height}, {width}], normalised inside the graph"
            : $"normalise inputs with mean {metadata["channel_mean"]} and std {metadata["channel_std"]}";
        Console.Error.WriteLine($"exported: {path} ({metadata["arch"]}, width {metadata["width"]}, stem {metadata["stem"]}; {input})");
        string evaluationPath = new RunFolder(run).Evaluation;
        var evaluation = File.Exists(evaluationPath) ? RunJson.Read<Evaluation.EvaluationResult>(evaluationPath) : null;
        Console.Error.WriteLine($"model card: {ModelCard.Write(Path.GetDirectoryName(Path.GetFullPath(path))!, path, model, (height, width), evaluation)}");
        return 0;
    }

    /// <summary>A fine-tune run: the whole network (backbone and task head); ONNX takes an image to class maps, or to boxes, scores and labels.</summary>
    static int ExportFinetuned(string run, Format format, string? output)
    {
        using var model = Transfer.FinetunedModel.Load(run);
        var header = model.Header;
        string kind = model.Task switch { Transfer.TransferTask.Segmentation => "segmenter", Transfer.TransferTask.Detection => "detector", _ => "classifier" };
        string path = output ?? Path.Combine(run, kind + format switch { Format.PyTorch => ".pt", Format.Onnx => ".onnx", _ => ".safetensors" });
        var metadata = new Dictionary<string, string>
        {
            ["task"] = model.Task.ToString().ToLowerInvariant(),
            ["classes"] = string.Join(",", header.ClassNames),
            ["arch"] = header.Backbone.ArchitectureName,
            ["width"] = header.Backbone.Width.ToString(CultureInfo.InvariantCulture),
            ["image_size"] = header.Side.ToString(CultureInfo.InvariantCulture),
            ["channel_mean"] = string.Join(",", header.ChannelMean.Select(m => m.ToString("R", CultureInfo.InvariantCulture))),
            ["channel_std"] = string.Join(",", header.ChannelStd.Select(m => m.ToString("R", CultureInfo.InvariantCulture))),
        };
        string outputs;
        switch (format)
        {
            case Format.Onnx when model.Network is Models.ClassificationNetwork classifier:
                OnnxWriter.WriteClassifier(path, classifier, header.ChannelMean, header.ChannelStd, metadata);
                outputs = $"outputs '{OnnxWriter.LogitsName}' [batch, {header.ClassNames.Count}] and '{OnnxWriter.ClassesName}' (int64, in the order of the 'classes' metadata)";
                break;
            case Format.Onnx when model.Task == Transfer.TransferTask.Segmentation:
                OnnxWriter.WriteSegmenter(path, (Models.DenseNetwork)model.Network, header.ChannelMean, header.ChannelStd, metadata);
                outputs = $"outputs '{OnnxWriter.LogitsName}' [batch, {header.ClassNames.Count}, height, width] and '{OnnxWriter.ClassMapName}' (int64 class map)";
                break;
            case Format.Onnx:
                OnnxWriter.WriteDetector(path, (Models.DenseNetwork)model.Network, header.ClassNames.Count, keep: 100, header.ChannelMean, header.ChannelStd, metadata);
                outputs = $"outputs '{OnnxWriter.BoxesName}' [batch, 100, 4] as x, y, width, height in input pixels, '{OnnxWriter.ScoresName}' and '{OnnxWriter.ClassesName}' (0-based, in the order of the 'classes' metadata)";
                break;
            case Format.PyTorch:
                TorchSharp.PyBridge.PyTorchPickler.PickleStateDict(path, model.Network.state_dict());
                outputs = "the network's state_dict (backbone.* with torchvision's names, then the decoder)";
                break;
            default:
                SafetensorsWriter.Write(path, model.Network.state_dict().Select(kv => (kv.Key, kv.Value)), new Dictionary<string, string>(metadata) { ["format"] = "pt" });
                outputs = "the network's tensors (backbone.* with torchvision's names, then the decoder)";
                break;
        }
        Console.Error.WriteLine($"exported: {path} ({kind}, {metadata["arch"]} width {metadata["width"]}, {header.ClassNames.Count} classes; " +
                                $"input '{OnnxWriter.InputName}': pixels in [0, 1], [batch, {header.Backbone.InputChannels}, {header.Side}, {header.Side}]; {outputs})");
        return 0;
    }
}
