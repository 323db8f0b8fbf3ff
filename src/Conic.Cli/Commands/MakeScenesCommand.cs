using System.CommandLine;
using Conic.Data;
using Conic.Transfer;

namespace Conic.Cli.Commands;

/// <summary><c>conic make-scenes</c>: the dense-transfer benchmark (scenes of labelled items, masks, COCO boxes).</summary>
static class MakeScenesCommand
{
    public static Command Create()
    {
        var output = new Option<string>("--out") { HelpName = "DIR", Description = "folder to write the scenes into", Required = true };
        var data = FinishedRun.DataOption("labelled grayscale images whose items the scenes are made of (default: Fashion-MNIST)");
        var defaults = new SceneOptions();
        var train = new Option<int>("--train") { HelpName = "N", Description = "training scenes (from the train split)", DefaultValueFactory = _ => defaults.TrainScenes };
        var val = new Option<int>("--val") { HelpName = "N", Description = "validation scenes (from the test split)", DefaultValueFactory = _ => defaults.ValidationScenes };
        var side = new Option<int>("--size") { HelpName = "PX", Description = "side of the square canvas", DefaultValueFactory = _ => defaults.Side };
        var objects = new Option<int>("--max-objects") { HelpName = "N", Description = "most items per scene (at least 1, placed without overlap)", DefaultValueFactory = _ => defaults.MaxObjects };
        var seed = new Option<int>("--seed") { HelpName = "N", Description = "seed of the composition", DefaultValueFactory = _ => 0 };
        var classification = new Option<bool>("--classification")
        {
            Description = "one item per scene, written as an image-classification folder instead: DIR/{train,test}/CLASS/*.png " +
                          "(--train and --val scenes; --max-objects not used), to pretrain and evaluate on",
        };
        var command = new Command("make-scenes",
            "Composes a segmentation and detection benchmark from labelled images: scenes of 1 to N items scaled and placed at random on " +
            "textured backgrounds, written as DIR/{train,val}/images/*.png, DIR/{train,val}/masks/*.png (class index per pixel, 0 = background), " +
            "DIR/{train,val}/annotations.json (COCO boxes) and DIR/classes.txt: the formats 'conic finetune' reads.")
            { output, data, train, val, side, objects, seed, classification };
        command.SetAction(result =>
        {
            var options = new SceneOptions
            {
                TrainScenes = result.GetValue(train), ValidationScenes = result.GetValue(val), Side = result.GetValue(side),
                MaxObjects = result.GetValue(objects), Seed = result.GetValue(seed),
            };
            if (options.TrainScenes < 1 || options.ValidationScenes < 1) throw new ConicException("--train and --val must be at least 1");
            if (options.MaxObjects < 1) throw new ConicException("--max-objects must be at least 1");
            if (options.Side < 16) throw new ConicException("--size must be at least 16");
            var splits = DatasetLoader.Load(result.GetValue(data));
            var test = splits.Test ?? throw new ConicException($"{splits.Train.Source}: no test split to compose the validation scenes from");
            string folder = result.GetValue(output)!;
            if (result.GetValue(classification))
            {
                SceneComposer.WriteClassification(folder, splits.Train, test, options);
                Console.Error.WriteLine($"scenes: {options.TrainScenes} train and {options.ValidationScenes} test images of one item, {options.Side} px, in class folders of {folder}");
            }
            else
            {
                SceneComposer.Write(folder, splits.Train, test, options);
                Console.Error.WriteLine($"scenes: {options.TrainScenes} train and {options.ValidationScenes} val scenes of {options.Side} px in {folder}");
            }
            return 0;
        });
        return command;
    }
}
