using Conic.Data;
using Conic.Evaluation;
using Conic.Export;
using Conic.Models;
using Conic.Training;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Tensor = TorchSharp.torch.Tensor;
using static TorchSharp.torch;
using static Conic.Runtime.KeptScalars;

namespace Conic.Tests;

public class OnnxExportTests
{
    /// <summary>Features of <paramref name="pixels"/> ([B, C, H, W] in [0, 1]) computed by ONNX Runtime.</summary>
    static float[] RunOnnx(InferenceSession session, Tensor pixels)
    {
        var input = new DenseTensor<float>(pixels.contiguous().data<float>().ToArray(), pixels.shape.Select(d => (int)d).ToArray());
        using var results = session.Run(new[] { NamedOnnxValue.CreateFromTensor(OnnxWriter.InputName, input) });
        var output = results.Single(r => r.Name == OnnxWriter.OutputName).AsTensor<float>();
        Assert.Equal(new[] { (int)pixels.shape[0] }, output.Dimensions[..1].ToArray());
        return output.ToArray();
    }

    /// <summary>A backbone in inference mode whose BatchNorm statistics and affine parameters are far from their initial values, so folding is exercised.</summary>
    static ResNet TrainedLookingBackbone(BackboneOptions options)
    {
        manual_seed(3);
        var backbone = new ResNet(options);
        using (no_grad())
        {
            foreach (var (_, module) in backbone.named_modules())
            {
                if (module is not TorchSharp.Modules.BatchNorm2d norm) continue;
                norm.running_mean!.copy_(randn_like(norm.running_mean).mul(Kept(0.3)));
                norm.running_var!.copy_(rand_like(norm.running_var).add(Kept(0.5), Kept(1)));
                norm.weight!.copy_(rand_like(norm.weight).add(Kept(0.5), Kept(1)));
                norm.bias!.copy_(randn_like(norm.bias).mul(Kept(0.1)));
            }
        }
        backbone.eval();
        return backbone;
    }

    [Theory]
    [InlineData(ResNetDepth.ResNet18, true, 1, 28)]
    [InlineData(ResNetDepth.ResNet50, false, 3, 48)]
    public void OnnxRuntimeGivesTorchSharpsFeaturesForAnyBatchAndSize(ResNetDepth depth, bool smallStem, int channels, int size)
    {
        var backbone = TrainedLookingBackbone(new BackboneOptions { Depth = depth, Width = 8, SmallImageStem = smallStem, InputChannels = channels });
        float[] mean = Enumerable.Range(0, channels).Select(c => 0.3f + 0.1f * c).ToArray();
        float[] std = Enumerable.Range(0, channels).Select(c => 0.2f + 0.05f * c).ToArray();
        string path = Path.Combine(TestFolder.New(), "encoder.onnx");
        OnnxWriter.Write(path, backbone, mean, std, new Dictionary<string, string> { ["arch"] = depth.ToString() });
        using var session = new InferenceSession(path);

        foreach (var (batch, side) in new[] { (3, size), (5, size + 4) })
        {
            using var pixels = rand(batch, channels, side, side);
            using var normalised = pixels.sub(tensor(mean).view(1, -1, 1, 1)).div(tensor(std).view(1, -1, 1, 1));
            using var expected = backbone.call(normalised);
            float[] actual = RunOnnx(session, pixels);
            Assert.Equal(expected.numel(), actual.Length);
            using var difference = expected.flatten().sub(tensor(actual)).abs().max();
            using var largest = expected.abs().max();
            // Float32 rounding grows with the values; these made-up statistics blow ResNet-50's features up to ~100.
            Assert.True(difference.item<float>() <= 1e-4f * Math.Max(1f, largest.item<float>()), $"batch {batch}, {side} px: max |ONNX - TorchSharp| = {difference.item<float>()}, largest feature {largest.item<float>()}");
        }
    }

    [Theory]
    // The ViT at 32 px uses its stored position table, at 24 and 40 px the table resampled bicubically in the graph.
    [InlineData("vit-tiny", 1, 32, 24)]
    [InlineData("vit-small", 3, 40, 32)]
    [InlineData("convnext-tiny", 1, 28, 36)]
    public void OnnxRuntimeGivesTorchSharpsFeaturesForTransformersAndConvNeXts(string arch, int channels, int size, int otherSize)
    {
        manual_seed(5);
        using var backbone = UntrainedBackbone(arch, channels);
        string path = Path.Combine(TestFolder.New(), "encoder.onnx");
        float[] mean = Enumerable.Repeat(0.4f, channels).ToArray(), std = Enumerable.Repeat(0.3f, channels).ToArray();
        OnnxWriter.Write(path, backbone, mean, std, new Dictionary<string, string>());
        using var session = new InferenceSession(path);
        foreach (var (batch, side) in new[] { (2, size), (3, otherSize) })
        {
            using var pixels = rand(batch, channels, side, side);
            using var expected = backbone.call(pixels.sub(Kept(0.4f)).div(Kept(0.3f)));
            using var difference = expected.flatten().sub(tensor(RunOnnx(session, pixels))).abs().max();
            Assert.True(difference.item<float>() <= 1e-4f * Math.Max(1f, expected.abs().max().item<float>()), $"{arch}, {side} px: max |ONNX - TorchSharp| = {difference.item<float>()}");
        }
    }

    /// <summary>
    /// The small-image variant of the backbone <c>--arch</c> calls <paramref name="arch"/>, in inference mode; a
    /// ConvNeXt's layer scales raised from their initial 1e-6, so that its blocks count in the features.
    /// </summary>
    static Backbone UntrainedBackbone(string arch, int channels)
    {
        var backbone = Backbone.Create(BackboneTrainingTests.Named(arch, channels));
        using (no_grad())
            foreach (var (name, parameter) in backbone.named_parameters().Where(p => p.name.EndsWith(".gamma", StringComparison.Ordinal)))
                parameter.uniform_(0.5, 1.5);
        backbone.eval();
        return backbone;
    }

    [Fact]
    public void ExportedRunLoadsInOnnxRuntimeWithItsMetadataAndGivesTheFeaturesConicExtracts()
    {
        string data = SyntheticData.WriteIdx(trainCount: 48, testCount: 8);
        string run = CliRunner.PretrainOneEpoch(data, instances: 32, batchSize: 16, width: 4, threads: 2);
        var (exitCode, _, stderr) = CliRunner.Run("export", "--run", run, "--format", "onnx");
        Assert.True(exitCode == 0, stderr);
        using var session = new InferenceSession(Path.Combine(run, "encoder.onnx"));

        using var model = PretrainedModel.Load(run);
        var test = DatasetLoader.Load(data).Test!;
        using var bytes = test.Gather(Enumerable.Range(0, test.Count).ToArray());
        using var pixels = bytes.to_type(ScalarType.Float32).div(Kept(255f));
        using var features = FeatureExtractor.Extract(model, test);
        using var difference = features.flatten().sub(tensor(RunOnnx(session, pixels))).abs().max();
        Assert.True(difference.item<float>() <= 1e-4f, $"max |ONNX - Conic| = {difference.item<float>()}");

        var metadata = session.ModelMetadata.CustomMetadataMap;
        Assert.Equal(test.Height.ToString(), metadata["image_height"]);
        Assert.Equal("1", metadata["input_channels"]);
        Assert.Equal("resnet18", metadata["arch"]);

        // A model card beside the weights, as model hubs read it; a user's own README.md in --out's folder is kept.
        string card = File.ReadAllText(Path.Combine(run, "README.md"));
        Assert.StartsWith("---\nlibrary_name: conic\n", card);
        Assert.Contains("Weights: `encoder.onnx`", card);
        Assert.Contains($"mean [{model.Normalization.Mean[0].ToString("G6", System.Globalization.CultureInfo.InvariantCulture)}]", card);
        Assert.Contains("Not evaluated", card);
        string elsewhere = TestFolder.New();
        File.WriteAllText(Path.Combine(elsewhere, "README.md"), "my project");
        var again = CliRunner.Run("export", "--run", run, "--format", "onnx", "--out", Path.Combine(elsewhere, "encoder.onnx"));
        Assert.True(again.ExitCode == 0, again.StdErr);
        Assert.Equal("my project", File.ReadAllText(Path.Combine(elsewhere, "README.md")));
        Assert.Contains("Weights: `encoder.onnx`", File.ReadAllText(Path.Combine(elsewhere, "encoder.model-card.md")));
    }

    /// <summary>A dense network on a trained-looking backbone, its decoder's BatchNorm statistics made up too, in inference mode.</summary>
    static DenseNetwork TrainedLookingNetwork(string arch, bool smallStem, int outputs, bool upsampleToInput)
    {
        Backbone backbone = arch == "resnet18" ? TrainedLookingBackbone(new BackboneOptions { Width = 4, SmallImageStem = smallStem }) : UntrainedBackbone(arch, 1);
        var network = new DenseNetwork(backbone, outputs, upsampleToInput, decoderChannels: 8);
        using (no_grad())
        {
            network.SmoothNorm.running_mean!.copy_(randn_like(network.SmoothNorm.running_mean).mul(Kept(0.3)));
            network.SmoothNorm.running_var!.copy_(rand_like(network.SmoothNorm.running_var).add(Kept(0.5), Kept(1)));
        }
        network.eval();
        return network;
    }

    static IDisposableReadOnlyCollection<DisposableNamedOnnxValue> RunDense(InferenceSession session, Tensor pixels) =>
        session.Run([NamedOnnxValue.CreateFromTensor(OnnxWriter.InputName, new DenseTensor<float>(pixels.contiguous().data<float>().ToArray(), pixels.shape.Select(d => (int)d).ToArray()))]);

    [Theory]
    [InlineData("resnet18", true, 24)]
    [InlineData("resnet18", false, 40)]
    [InlineData("vit-tiny", true, 24)]
    [InlineData("convnext-tiny", true, 24)]
    public void OnnxSegmenterGivesTorchSharpsLogitsAndClassMap(string arch, bool smallStem, int side)
    {
        using var network = TrainedLookingNetwork(arch, smallStem, outputs: 5, upsampleToInput: true);
        float[] mean = [0.4f], std = [0.3f];
        string path = Path.Combine(TestFolder.New(), "segmenter.onnx");
        OnnxWriter.WriteSegmenter(path, network, mean, std, new Dictionary<string, string>());
        using var session = new InferenceSession(path);
        foreach (int size in new[] { side, side + 8 })
        {
            using var pixels = rand(2, 1, size, size);
            using var expected = network.call(pixels.sub(Kept(0.4f)).div(Kept(0.3f)));
            using var results = RunDense(session, pixels);
            var logits = results.Single(r => r.Name == OnnxWriter.LogitsName).AsTensor<float>();
            Assert.Equal(expected.shape.Select(d => (int)d), logits.Dimensions.ToArray());
            using var difference = expected.flatten().sub(tensor(logits.ToArray())).abs().max();
            Assert.True(difference.item<float>() <= 1e-4f * Math.Max(1f, expected.abs().max().item<float>()), $"{size} px: max |ONNX - TorchSharp| = {difference.item<float>()}");
            // The class maps agree wherever the two best classes are not within rounding of each other.
            var classes = results.Single(r => r.Name == OnnxWriter.ClassMapName).AsTensor<long>().ToArray();
            using var top2 = expected.topk(2, dim: 1).values;
            var margin = top2[.., 0].sub(top2[.., 1]).flatten().data<float>().ToArray();
            var argmax = expected.argmax(1).flatten().data<long>().ToArray();
            Assert.All(Enumerable.Range(0, argmax.Length).Where(i => margin[i] > 1e-3f), i => Assert.Equal(argmax[i], classes[i]));
        }
    }

    [Theory]
    [InlineData("resnet18", true, 24)]
    [InlineData("resnet18", false, 48)]
    [InlineData("vit-tiny", true, 24)]
    [InlineData("convnext-tiny", true, 24)]
    public void OnnxDetectorGivesTorchSharpsDecodedBoxes(string arch, bool smallStem, int side)
    {
        const int classes = 3, keep = 20;
        using var network = TrainedLookingNetwork(arch, smallStem, outputs: classes + 4, upsampleToInput: false);
        string path = Path.Combine(TestFolder.New(), "detector.onnx");
        OnnxWriter.WriteDetector(path, network, classes, keep, [0.4f], [0.3f], new Dictionary<string, string>());
        using var session = new InferenceSession(path);
        using var pixels = rand(2, 1, side, side);
        var (boxes, scores, labels) = Transfer.DetectionTask.Decode(network.call(pixels.sub(Kept(0.4f)).div(Kept(0.3f))), classes, network.OutputStride, keep);
        using var results = RunDense(session, pixels);
        var onnxScores = results.Single(r => r.Name == OnnxWriter.ScoresName).AsTensor<float>();
        var onnxBoxes = results.Single(r => r.Name == OnnxWriter.BoxesName).AsTensor<float>();
        var onnxLabels = results.Single(r => r.Name == OnnxWriter.ClassesName).AsTensor<long>();
        Assert.Equal([2, keep], onnxScores.Dimensions.ToArray());
        for (int b = 0; b < 2; b++)
        {
            float lowest = scores[b, keep - 1].item<float>();
            for (int k = 0; k < keep; k++)
            {
                // Tolerances, not decimal places: rounding to places fails when a value straddles a rounding boundary
                // (0.8845001 against 0.8844997 failed once in two CI runs).
                Assert.Equal(scores[b, k].item<float>(), onnxScores[b, k], 1e-4);
                // Equal scores come in either order (an untrained ViT's upsampled maps have plateaus of equal peaks),
                // and of a tie at the last place either may be kept: each detection above it is one of TorchSharp's.
                if (onnxScores[b, k] <= lowest + 1e-4) continue;
                int row = b, column = k;
                bool Same(int j) => Math.Abs(scores[row, j].item<float>() - onnxScores[row, column]) <= 1e-4 && labels[row, j].item<long>() == onnxLabels[row, column] &&
                                    Enumerable.Range(0, 4).All(c => Math.Abs(boxes[row, j, c].item<float>() - onnxBoxes[row, column, c]) <= 1e-3);
                Assert.True(Enumerable.Range(0, keep).Any(Same), $"{arch}: ONNX detection {k} of image {b} is not among TorchSharp's");
            }
        }
    }
}
