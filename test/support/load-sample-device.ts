// Every test file starts with the sample device's module loaded, as `bench` loads a
// scenario's device when it reads the scenario: tests build scenarios in code (no file,
// no loader) and run them on the default device, the sample.
import { SAMPLE_DEVICE, loadDevice } from '../../src/device-api/load.ts';

await loadDevice(SAMPLE_DEVICE);
