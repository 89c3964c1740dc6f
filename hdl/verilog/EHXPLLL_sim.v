// Behavioural model of the ECP5 EHXPLLL for post-synthesis simulation.
//
// yosys's ECP5 cells declare the PLL only as a black box (cells_bb.v), so a
// netlist clocked through it would never see a clock edge. Here CLKOP is
// CLKI and LOCK is 1 from the start: the post-synthesis check counts cycles
// of the core clock (its UART divisor is in core cycles), so the frequency
// the PLL makes on the board does not enter the simulation; what it checks
// is the logic behind the PLL. Any feedback path other than CLKOP, or the
// reset or standby driven, stops the simulation ($fatal) rather than be
// simulated wrongly. `onebit_hdl::verilog::cell_models` adds it to the ECP5
// models (the board wrapper of onebit_hdl::pll::ecp5_pll_wrapper uses it).
`timescale 1ns / 1ps
module EHXPLLL (
	input CLKI, CLKFB,
	input PHASESEL1, PHASESEL0, PHASEDIR, PHASESTEP, PHASELOADREG,
	input STDBY, PLLWAKESYNC,
	input RST, ENCLKOP, ENCLKOS, ENCLKOS2, ENCLKOS3,
	output CLKOP, CLKOS, CLKOS2, CLKOS3,
	output LOCK, INTLOCK,
	output REFCLK, CLKINTFB
);
	parameter CLKI_DIV = 1;
	parameter CLKFB_DIV = 1;
	parameter CLKOP_DIV = 8;
	parameter CLKOS_DIV = 8;
	parameter CLKOS2_DIV = 8;
	parameter CLKOS3_DIV = 8;
	parameter CLKOP_ENABLE = "ENABLED";
	parameter CLKOS_ENABLE = "DISABLED";
	parameter CLKOS2_ENABLE = "DISABLED";
	parameter CLKOS3_ENABLE = "DISABLED";
	parameter CLKOP_CPHASE = 0;
	parameter CLKOS_CPHASE = 0;
	parameter CLKOS2_CPHASE = 0;
	parameter CLKOS3_CPHASE = 0;
	parameter CLKOP_FPHASE = 0;
	parameter CLKOS_FPHASE = 0;
	parameter CLKOS2_FPHASE = 0;
	parameter CLKOS3_FPHASE = 0;
	parameter FEEDBK_PATH = "CLKOP";
	parameter CLKOP_TRIM_POL = "RISING";
	parameter CLKOP_TRIM_DELAY = 0;
	parameter CLKOS_TRIM_POL = "RISING";
	parameter CLKOS_TRIM_DELAY = 0;
	parameter OUTDIVIDER_MUXA = "DIVA";
	parameter OUTDIVIDER_MUXB = "DIVB";
	parameter OUTDIVIDER_MUXC = "DIVC";
	parameter OUTDIVIDER_MUXD = "DIVD";
	parameter PLL_LOCK_MODE = 0;
	parameter PLL_LOCK_DELAY = 200;
	parameter STDBY_ENABLE = "DISABLED";
	parameter REFIN_RESET = "DISABLED";
	parameter SYNC_ENABLE = "DISABLED";
	parameter INT_LOCK_STICKY = "ENABLED";
	parameter DPHASE_SOURCE = "DISABLED";
	parameter PLLRST_ENA = "DISABLED";
	parameter INTFB_WAKE = "DISABLED";

	initial begin
		if (FEEDBK_PATH != "CLKOP" || CLKOP_ENABLE != "ENABLED" || PLLRST_ENA != "DISABLED" || STDBY_ENABLE != "DISABLED") begin
			$display("EHXPLLL %m: only CLKOP with feedback from CLKOP, no reset or standby, is modelled");
			$fatal(1);
		end
	end
	always @(RST or STDBY)
		if (RST === 1'b1 || STDBY === 1'b1) begin
			$display("EHXPLLL %m: RST or STDBY driven high is not modelled");
			$fatal(1);
		end
	assign CLKOP = CLKI;
	assign LOCK = 1'b1;
	assign INTLOCK = 1'b1;
	assign CLKOS = 1'b0;
	assign CLKOS2 = 1'b0;
	assign CLKOS3 = 1'b0;
	assign REFCLK = CLKI;
	assign CLKINTFB = 1'b0;
endmodule
