// Behavioural model of the iCE40 SB_PLL40_PAD for post-synthesis simulation.
//
// yosys's iCE40 cells_sim.v declares the PLL a black box with no body, so a
// netlist clocked through it would never see a clock edge. Here the output
// clock is the input clock and LOCK is 1 from the start: the post-synthesis
// check counts cycles of the core clock (its UART divisor is in core cycles),
// so the frequency the PLL makes on the board does not enter the simulation;
// what it checks is the logic behind the PLL. Any feedback path other than
// SIMPLE, or the bypass or reset driven, stops the simulation ($fatal) rather
// than be simulated wrongly. `onebit_hdl::verilog::cell_models` puts this in
// place of cells_sim.v's empty module; exercised by the iCE40 board netlist in
// sim/tests/rusthdl/bridge.rs (board_netlists_pass_the_post_synthesis_check).
`timescale 1ns / 1ps
module SB_PLL40_PAD (
	input   PACKAGEPIN,
	output  PLLOUTCORE,
	output  PLLOUTGLOBAL,
	input   EXTFEEDBACK,
	input   [7:0] DYNAMICDELAY,
	output  LOCK,
	input   BYPASS,
	input   RESETB,
	input   LATCHINPUTVALUE,
	output  SDO,
	input   SDI,
	input   SCLK
);
	parameter FEEDBACK_PATH = "SIMPLE";
	parameter DELAY_ADJUSTMENT_MODE_FEEDBACK = "FIXED";
	parameter DELAY_ADJUSTMENT_MODE_RELATIVE = "FIXED";
	parameter SHIFTREG_DIV_MODE = 1'b0;
	parameter FDA_FEEDBACK = 4'b0000;
	parameter FDA_RELATIVE = 4'b0000;
	parameter PLLOUT_SELECT = "GENCLK";
	parameter DIVR = 4'b0000;
	parameter DIVF = 7'b0000000;
	parameter DIVQ = 3'b000;
	parameter FILTER_RANGE = 3'b000;
	parameter ENABLE_ICEGATE = 1'b0;
	parameter TEST_MODE = 1'b0;
	parameter EXTERNAL_DIVIDE_FACTOR = 1;

	assign PLLOUTCORE = PACKAGEPIN;
	assign PLLOUTGLOBAL = PACKAGEPIN;
	assign LOCK = 1'b1;
	assign SDO = 1'b0;

	initial begin
		#1;
		if (FEEDBACK_PATH != "SIMPLE" || PLLOUT_SELECT != "GENCLK")
			$fatal(1, "SB_PLL40_PAD model: only FEEDBACK_PATH SIMPLE, PLLOUT_SELECT GENCLK are modelled");
		if (BYPASS !== 1'b0 || RESETB !== 1'b1)
			$fatal(1, "SB_PLL40_PAD model: BYPASS must be 0 and RESETB 1");
	end
endmodule
