//! A bit-accurate simulator of the OpenSpike accelerator's datapath (Modaresi, Guthaus and
//! Eshraghian, ISCAS 2023; RTL in `sfmth/OpenSpike`, commit 9277bc5, `openlane/src/`).
//!
//! # The datapath, per neuron and time step
//! Layers run in order within a step, each reading the spikes the layer before produced in the
//! same step (layer 0 reads the external input vector). For neuron `j` of a layer:
//! - **Synapses** (`accumulator.v`): weights are 1 bit; a synapse adds `w AND s`. The
//!   accumulator is 8 bits with a carry check that pins it at 255 once it overflows, so
//!   `acc = min(255, active synapses)`.
//! - **Decay** (`shift_add_mult.v`, fed by `u_b_processor.v`): the stored 8-bit potential `u`
//!   is multiplied by a 4-bit code β in eighths using shifts, each `u >> k` truncated on its
//!   own: bit 2 of β adds `u >> 1`, bit 1 adds `u >> 2`, bit 0 adds `u >> 3`, and code 8 passes
//!   `u` through. Codes 9..15 drive the output to `x` in the RTL; they are refused here.
//! - **Integration** (`neuron.v`): `v = min(255, decay(β, u) + acc)` (9-bit sum, saturated).
//! - **Firing** (`schmitt_trigger.v`): `spike = able AND v > 230`; then
//!   `able' = NOT spike AND v < 200` (both comparisons strict). A neuron that fired stays
//!   disarmed until its potential has fallen below 200.
//! - **Write-back** (`u_b_processor.v`): the stored potential becomes 0 after a spike, else `v`.
//!
//! # The accelerator around it
//! 1024 physical neurons in groups of 16 are reused by every layer. The control unit runs three
//! layers per step: an *input* layer in which physical neuron `j` sees only input spike `j`
//! gated by bit `2j` of weight word 0 (`neuron_selector.v`: in input mode `spk[0]` is the
//! input register and `spk[1]` is 0, so bit `2j+1` of word 0 is unused); a *hidden* layer of
//! up to 1024 neurons fed by the input layer two pre-neurons per clock (weight words 1..512);
//! and an *output* layer of 16 neurons (group 128) fed by the hidden layer (words 513..1024).
//! [`images`] writes and reads the memory images in that layout; [`datapath`] simulates any
//! chain of fully connected layers the datapath can hold (≤ 1024 neurons, fan-in ≤ 1024), which
//! is what the reference cases (`openspike-case-v1`, [`case`]) describe. [`compile`] maps a
//! trained network of two fully connected layers onto the chip.
//!
//! # Timing
//! One time step is [`CLOCKS_PER_STEP`] = 1,092 clocks: 1 (set up the input layer) + 65 (load
//! 64 groups of decayed potentials, accumulate the input layer, write back the previous step's
//! output group) + 1 + 512 (hidden layer: two pre-neurons per clock; the input layer's 64
//! groups are written back meanwhile) + 1 + 512 (output layer; the hidden layer is written
//! back). A run starts with [`START_CLOCKS`] = 9 (reset, then 8 clocks loading the first 1024
//! input bits). The OpenLane configuration (`openlane/config.tcl`, `CLOCK_PERIOD 40`) closes
//! timing at 40 ns, so a step takes 43.68 µs and an inference of `T` steps
//! `(9 + 1092·T) × 40 ns`. (The upstream README says 40 MHz and 20.72 µs per image; neither
//! matches the configuration nor the state machine's clock count.)
//!
//! # Where the taped-out control unit departs from the intent
//! `openlane/src/control_unit.v` (identical to `verilog-workbench/src/control_unit.v`) wires
//! this datapath up with several sequencing faults. This simulator follows the designers'
//! evident intent (each layer accumulates from zero over its own inputs, reads the previous
//! layer's spikes of the same step, and writes back to its own group addresses) and does not
//! reproduce these faults:
//! - **A 1-bit select that is incremented** (lines 191 and 256): `cntrl_spk_select <=
//!   cntrl_spk_select + 1` toggles the accumulators' spike source between the input register
//!   and the spike memory on every one of the first 63 clocks of the hidden and output phases.
//!   It should stay 0 there; and line 106 sets it to 0 before the input phase, which needs 1
//!   (input mode), so the input register never feeds the input layer as intended.
//! - **Spike-memory address stepping every clock instead of every 8** (lines 178 and 245):
//!   `cntrl_ac_spk_read_addr` advances with the 3-bit `cntrl_ac_spk_read_switch`, though each
//!   16-bit spike word holds 8 pairs of pre-neurons; clock `c` reads pair `c mod 8` of word
//!   `c` instead of word `c / 8`, and runs past the previous layer's 64 words.
//! - **Overlapping input windows** (lines 231 and 263-265): the next step's input load starts
//!   at word `time_step + 1` and reads 8 words, so step `t` reads words `t..t+7` and
//!   consecutive steps share 7 of their 8 words; the intended layout is words `8t..8t+7`. The
//!   very first load (lines 62 and 68-70) is issued while `cntrl_proc_reset` is still 1, so the
//!   spike processor's reset wins at that edge and inputs 0..127 of step 0 are dropped.
//! - **A corrupted output-layer write** (line 102): the output layer's spikes are written to
//!   spike address `time_step`, which is the input layer's group `time_step` (or a hidden
//!   group from step 64 on); that group is rewritten in the same step, so the output spikes are
//!   lost. Step 128's output layer is never latched at all (lines 276-277).
//! - **No accumulator reset between phases** (lines 128-130 and 142-167): the accumulators are
//!   latched and cleared one clock into the input phase, then keep integrating through the rest
//!   of it and the hidden-phase set-up (`STATE_P_H` asserts neither `cntrl_ac_reset` nor
//!   `cntrl_ac_oen`), so the hidden layer's counts start from input-phase leftovers.
//!
//! Other limits read from the RTL: the input-spike memory has a 9-bit address
//! (`accelerator.v` line 36), so at 8 words per step a run holds [`MAX_IMAGE_STEPS`] = 64 steps
//! of input; the control loop itself stops after [`MAX_STEPS`] = 128 written-back steps
//! (line 271). The 2048-word weight memory has room for word 0 and two 512-word layers.

pub mod case;
pub mod compile;
pub mod datapath;
mod hex;
pub mod images;
pub mod train;

pub use case::{
    check_case, check_cases, check_file, encode_cases, load_cases, parse_cases, CaseReport,
    Expected, ExpectedLayer, Mismatch, OpenSpikeCase,
};
pub use compile::{CompileOptions, Compiled};
pub use datapath::{accumulate, decay, schmitt, Layer, LayerStep, Network, State, Trace};
pub use images::{
    read_images, run_images, write_images, ChipLayout, ImageRun, Images, Loaded, Sram,
};

/// High threshold of the Schmitt trigger: a neuron fires when `v > 230` (and it is armed).
pub const THRESH_HIGH: u8 = 230;
/// Low threshold of the Schmitt trigger: a neuron is re-armed when `v < 200`.
pub const THRESH_LOW: u8 = 200;
/// Largest decay code the shift-add multiplier defines (β = 8/8: no decay).
pub const MAX_BETA: u8 = 8;
/// Physical neurons (and accumulators): the most neurons a layer can have.
pub const MAX_NEURONS: usize = 1024;
/// Most inputs a neuron can have: a 1024-bit input vector, or 512 weight words of two
/// pre-neurons each.
pub const MAX_FAN_IN: usize = 1024;
/// Neurons per group: one potential word (16 × 8 bits), one spike word (16 bits).
pub const GROUP: usize = 16;
/// Neurons of the accelerator's output layer (one group, address 128).
pub const MAX_OUTPUTS: usize = GROUP;
/// Time steps the control unit writes back in one run (`time_step < 128`).
pub const MAX_STEPS: usize = 128;
/// Time steps whose inputs fit the input-spike memory (512 words, 8 per step).
pub const MAX_IMAGE_STEPS: usize = 512 / INPUT_WORDS_PER_STEP;
/// 128-bit input words per time step (1024 input spikes).
pub const INPUT_WORDS_PER_STEP: usize = 8;
/// Clock period the OpenLane configuration closes timing at, in nanoseconds.
pub const CLOCK_PERIOD_NS: u64 = 40;

/// Clocks of each phase of a time step, in order: set-up, input layer (64 potential groups
/// loaded + 1), set-up, hidden layer (512 weight words), set-up, output layer (512 words).
pub const PHASE_CLOCKS: [u64; 6] = [1, 64 + 1, 1, 512, 1, 512];
/// Clocks per time step: the sum of [`PHASE_CLOCKS`] (1,092).
pub const CLOCKS_PER_STEP: u64 = {
    let mut sum = 0;
    let mut i = 0;
    while i < PHASE_CLOCKS.len() {
        sum += PHASE_CLOCKS[i];
        i += 1;
    }
    sum
};
/// Clocks before the first step: one reset state, then 8 clocks loading the first input words.
pub const START_CLOCKS: u64 = 1 + INPUT_WORDS_PER_STEP as u64;

/// Clocks an inference of `steps` time steps takes: `9 + 1092 · steps`.
pub fn run_clocks(steps: usize) -> u64 {
    START_CLOCKS + CLOCKS_PER_STEP * steps as u64
}

/// Wall-clock time of an inference of `steps` time steps at [`CLOCK_PERIOD_NS`], in ns.
pub fn run_time_ns(steps: usize) -> u64 {
    run_clocks(steps) * CLOCK_PERIOD_NS
}
