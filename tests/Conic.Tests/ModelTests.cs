using TorchSharp;
using Conic.Losses;
using Conic.Methods;
using Conic.Models;
using static TorchSharp.torch;
using static Conic.Runtime.KeptScalars;

namespace Conic.Tests;

public class ModelTests
{
    [Fact]
    public void ResNet18KeepsTorchvisionParameterNamesAndShapes()
    {
        using var resnet = new ResNet(new BackboneOptions { Width = 64, SmallImageStem = false, InputChannels = 3 });
        var state = resnet.state_dict();
        Assert.Equal(new long[] { 64, 3, 7, 7 }, state["conv1.weight"].shape);
        Assert.Equal(new long[] { 128, 64, 1, 1 }, state["layer2.0.downsample.0.weight"].shape);
        Assert.Contains("layer4.1.bn2.running_var", state.Keys);
        Assert.Contains("bn1.num_batches_tracked", state.Keys);
        // torchvision resnet18 without fc: 11,176,512 parameters.
        Assert.Equal(11_176_512, resnet.parameters().Sum(p => p.numel()));
        Assert.Equal(new long[] { 2, 512 }, resnet.call(randn(2, 3, 64, 64)).shape);
    }

    [Fact]
    public void NarrowNetworksComputeChannelsLastWithTheNumbersAndGradientsOfPyTorchsLayout()
    {
        bool oneDnnWas = Conic.Runtime.TorchRuntime.OneDnnEnabled;
        try
        {
            manual_seed(3);
            // Float64 runs libtorch's native kernels in either layout, so any difference is the layout plumbing's.
            using var narrow = new ResNet(new BackboneOptions { Width = 8, InputChannels = 3 });
            narrow.to(ScalarType.Float64);
            using var wide = new ResNet(new BackboneOptions { Width = 32 });
            var input = randn(new long[] { 4, 3, 12, 12 }, ScalarType.Float64);

            (Tensor Features, Tensor[] Gradients) Run(bool oneDnn)
            {
                Conic.Runtime.TorchRuntime.SetOneDnn(oneDnn);
                Assert.Equal(oneDnn, narrow.ComputesChannelsLast);
                narrow.zero_grad();
                var features = narrow.call(input);
                features.pow(Kept(2)).sum().backward();
                return (features.detach(), narrow.parameters().Select(p => p.grad!.clone()).ToArray());
            }

            var channelsLast = Run(oneDnn: true);
            Assert.True(channelsLast.Features.is_contiguous(), "features leave in PyTorch's layout");
            var pyTorchLayout = Run(oneDnn: false);
            TensorAssert.RelativelyClose(pyTorchLayout.Features, channelsLast.Features, "features", 1e-12);
            var names = narrow.named_parameters().Select(p => p.name).ToArray();
            for (int i = 0; i < names.Length; i++)
                TensorAssert.RelativelyClose(pyTorchLayout.Gradients[i], channelsLast.Gradients[i], names[i], 1e-12);
            Conic.Runtime.TorchRuntime.SetOneDnn(true);
            Assert.False(wide.ComputesChannelsLast);
        }
        finally
        {
            Conic.Runtime.TorchRuntime.SetOneDnn(oneDnnWas);
        }
    }

    [Theory]
    // torchvision's networks at 224 px counted by forward hooks on every Conv2d in PyTorch (the published 1.8 and 4.1 G).
    [InlineData(ResNetDepth.ResNet18, 1_813_561_344L)]
    [InlineData(ResNetDepth.ResNet50, 4_087_136_256L)]
    public void MultiplyAddsAreTorchvisionsConvolutionCount(ResNetDepth depth, long expected)
    {
        using var resnet = new ResNet(new BackboneOptions { Depth = depth, Width = 64, SmallImageStem = false, InputChannels = 3 });
        Assert.Equal(expected, resnet.MultiplyAddsPerImage(224, 224));
    }

    [Fact]
    public void SmallStemMultiplyAddsAreCountedByHand()
    {
        // Width 1, 1 channel, 4x4 px: stem 3x3 at 4x4 (9*16); stage 1: four 3x3 1->1 at 4x4 (4*9*16); stage 2: 3x3 1->2 at
        // 2x2 (18*4), 3x3 2->2 (36*4) twice more and 3x3 2->2 (36*4), shortcut 1x1 1->2 (2*4); stages 3 and 4 likewise at
        // 1x1 (channels 4 and 8).
        using var resnet = new ResNet(new BackboneOptions { Width = 1 });
        long stage(int c, long pixels) => (9L * c / 2 * c + 3 * 9L * c * c + c / 2 * c) * pixels;
        Assert.Equal(9 * 16 + 4 * 9 * 16 + stage(2, 4) + stage(4, 1) + stage(8, 1), resnet.MultiplyAddsPerImage(4, 4));
    }

    [Theory]
    [InlineData(0.1)]
    [InlineData(null)]
    public void BatchNormsComputeWhatTorchSharpsBatchNormDoes(double? momentum)
    {
        // Conic bypasses the module's forward (its batch count frees Scalars mid-call), so the two must agree step for step.
        manual_seed(5);
        using var mine = nn.BatchNorm2d(3);
        using var theirs = nn.BatchNorm2d(3);
        (mine.momentum, theirs.momentum) = (momentum, momentum);
        theirs.load_state_dict(mine.state_dict());
        for (int step = 0; step < 3; step++)
        {
            var input = randn(4, 3, 5, 5).mul_(Kept(step + 1)).add_(Kept(step), Kept(1));
            Assert.True(allclose(BatchNorms.Apply(mine, input), theirs.call(input), atol: 1e-6));
        }
        Assert.True(allclose(mine.running_mean!, theirs.running_mean!, atol: 1e-6));
        Assert.True(allclose(mine.running_var!, theirs.running_var!, atol: 1e-6));
        Assert.Equal(3, mine.num_batches_tracked!.item<long>());
        mine.eval();
        theirs.eval();
        var probe = randn(2, 3, 5, 5);
        Assert.True(allclose(BatchNorms.Apply(mine, probe), theirs.call(probe), atol: 1e-6));
        Assert.Equal(3, mine.num_batches_tracked!.item<long>());
    }

    [Fact]
    public void ResNet50HasBottlenecksWithExpansionFour()
    {
        using var resnet = new ResNet(new BackboneOptions { Depth = ResNetDepth.ResNet50, Width = 8, InputChannels = 1 });
        Assert.Equal(256, resnet.FeatureDim);
        Assert.Contains("layer3.5.conv3.weight", resnet.state_dict().Keys);
        Assert.Equal(new long[] { 3, 256 }, resnet.call(randn(3, 1, 16, 16)).shape);
    }

    [Fact]
    public void ConicStateHasBackboneProjectorAndClassifierOnly()
    {
        using var method = new ConicMethod(new ResNet(new BackboneOptions { Width = 4 }), 10, new ConicOptions());
        var prefixes = method.state_dict().Keys.Select(k => k.Split('.')[0]).Distinct().Order();
        Assert.Equal(new[] { "backbone", "classifier", "projector" }, prefixes);
        Assert.Equal(new long[] { 10, 128 }, method.state_dict()["classifier"].shape);
        // Every parameter is optimised exactly once.
        var optimised = method.ParameterGroups(1e-4).SelectMany(g => g.Parameters).ToList();
        Assert.Equal(method.parameters().Count(), optimised.Count);
        Assert.Equal(optimised.Count, optimised.Select(p => p.Handle).Distinct().Count());
    }

    [Fact]
    public void BFloat16ComputeKeepsFloat32WeightsGradientsAndFeatures()
    {
        manual_seed(2);
        using var network = new ResNet(new BackboneOptions { Width = 4 });
        var input = randn(6, 1, 16, 16);
        network.train();
        var reference = network.call(input);
        reference.pow(Kept(2)).sum().backward();
        var referenceGrad = network.named_parameters().First(p => p.name == "layer2.0.downsample.0.weight").parameter.grad!.clone();
        network.zero_grad();

        network.BFloat16Compute = true;
        var features = network.call(input);
        features.pow(Kept(2)).sum().backward();
        var parameter = network.named_parameters().First(p => p.name == "layer2.0.downsample.0.weight").parameter;
        Assert.Equal(ScalarType.Float32, features.dtype);
        Assert.Equal(ScalarType.Float32, parameter.dtype);
        Assert.Equal(ScalarType.Float32, parameter.grad!.dtype);
        Assert.Equal(ScalarType.Float32, network.state_dict()["bn1.running_mean"].dtype);
        // bfloat16 keeps 8 bits of mantissa: features and gradients agree with float32 to a few per cent — where this
        // CPU's bfloat16 kernels are right. Where the arithmetic check finds them wrong (Zen 5), they must not be chosen.
        var check = ArithmeticCheck.Measure(network, 16, 16, 12, [ConvolutionArithmetic.BFloat16OneDnn]).Single();
        if (!check.Agrees)
        {
            var choice = ArithmeticCheck.Choose(network, 16, 16, 12, Precision.Auto, ConvolutionKernels.Auto, cpuHasBFloat16: true);
            Assert.False(choice.Training.BFloat16, check.ToString());
            return;
        }
        double featureError = features.sub(reference).norm().item<float>() / reference.norm().item<float>();
        double gradError = parameter.grad.sub(referenceGrad).norm().item<float>() / referenceGrad.norm().item<float>();
        Assert.True(featureError < 0.05, $"features differ by {featureError:P1}");
        Assert.True(gradError < 0.1, $"gradients differ by {gradError:P1}");
    }

    [Fact]
    public void ConicHeadsGiveTheSameLoss()
    {
        float Loss(ClassifierHead head)
        {
            manual_seed(4);
            using var method = new ConicMethod(new ResNet(new BackboneOptions { Width = 4 }), 300, new ConicOptions { ClassifierHead = head, ClassifierChunk = 64 });
            var views = new[] { randn(8, 1, 16, 16), randn(8, 1, 16, 16) };
            using var generator = new Generator(1);
            var batch = new TrainingBatch(views, tensor(new long[] { 0, 5, 9, 17, 100, 150, 200, 299 }), 0.5, generator);
            return method.TrainingStep(batch).Total.item<float>();
        }
        float materialized = Loss(ClassifierHead.Materialized);
        Assert.Equal(materialized, Loss(ClassifierHead.Chunked), 4);
        Assert.Equal(materialized, Loss(ClassifierHead.Auto), 4);
    }

    [Theory]
    [InlineData(ConsistencyTarget.Embedding)]
    [InlineData(ConsistencyTarget.Features)]
    public void ConsistencyPullsTheChosenRepresentationOfTheTwoViews(ConsistencyTarget target)
    {
        manual_seed(4);
        var backbone = new ResNet(new BackboneOptions { Width = 4 });
        using var method = new ConicMethod(backbone, 20, new ConicOptions { ConsistencyOn = target });
        method.eval();  // BatchNorm with running statistics: the same features whether views are stacked or not
        var views = new[] { randn(4, 1, 16, 16), randn(4, 1, 16, 16) };
        using var generator = new Generator(1);
        var loss = method.TrainingStep(new TrainingBatch(views, tensor(new long[] { 0, 3, 7, 19 }), 0.5, generator));

        using var features1 = backbone.call(views[0]);
        using var features2 = backbone.call(views[1]);
        var expected = target == ConsistencyTarget.Features
            ? ConicLosses.Consistency(features1, features2).item<float>()
            : ConicLosses.Consistency(method.Projector.call(features1), method.Projector.call(features2)).item<float>();
        Assert.Equal(expected, loss.Terms.Single(t => t.Name == "consistency").Value.item<float>(), 5);
    }

    [Theory]
    [InlineData(0.0, 0.0)]
    [InlineData(0.1, 1.0)]
    [InlineData(0.2, 2.0)]
    [InlineData(0.9, 4.0)]
    public void RampedLambdaWeighsTheConsistencyByTrainingProgress(double progress, double expectedWeight)
    {
        var options = new ConicOptions { ConsistencyWeight = 4, ConsistencyRamp = 0.4 };
        Assert.Equal(expectedWeight, options.ConsistencyWeightAt(progress), 9);

        manual_seed(5);
        using var method = new ConicMethod(new ResNet(new BackboneOptions { Width = 4 }), 10, options);
        using var generator = new Generator(1);
        var loss = method.TrainingStep(new TrainingBatch(new[] { randn(2, 1, 16, 16), randn(2, 1, 16, 16) }, tensor(new long[] { 1, 8 }), progress, generator));
        float Term(string name) => loss.Terms.Single(t => t.Name == name).Value.item<float>();
        Assert.Equal(Term("classification") + expectedWeight * Term("consistency"), loss.Total.item<float>(), 4);
    }

    [Fact]
    public void MomentumEncoderStartsAsACopyAndFollowsTheOnlineNetwork()
    {
        manual_seed(0);
        var online = new ProjectionHead(4, 8, 2);
        var target = new MomentumEncoder((online, new ProjectionHead(4, 8, 2)));
        var onlineWeight = online.parameters().First();
        var targetWeight = target.parameters().First();
        Assert.True(allclose(onlineWeight, targetWeight));
        Assert.False(targetWeight.requires_grad);

        var before = targetWeight.clone();
        using (no_grad()) onlineWeight.add_(Kept(1.0), Kept(1));
        target.Update(0.9, online);
        Assert.True(allclose(targetWeight, before.add(Kept(0.1), Kept(1)), atol: 1e-6));
    }

    [Theory]
    [InlineData(0.0, 0.99)]
    [InlineData(0.5, 0.995)]
    [InlineData(1.0, 1.0)]
    public void CosineMomentumRisesFromBaseToOne(double progress, double expected)
    {
        Assert.Equal(expected, MomentumEncoder.CosineMomentum(0.99, progress), 9);
    }
}
